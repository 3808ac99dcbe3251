"""The load driver: flags, prompts, error kinds, records, and the run on a scripted client."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import (
    AuthenticationError,
    BenchmarkError,
    ChatChunk,
    ChatResult,
    Choice,
    ChunkParseError,
    ConfigError,
    ConnectError,
    ConnectTimeout,
    Delta,
    HTTPStatusError,
    IncompleteStreamError,
    StallTimeout,
    UpstreamError,
    Usage,
)
from gptoss_modal.bench.budgets import parse_budgets
from gptoss_modal.bench.run import (
    AllRequestsFailed,
    BenchSettings,
    Level,
    LiveStats,
    TerminalProgress,
    error_kind,
    load_prompts,
    parse_duration,
    parse_levels,
    run_benchmark,
    synthetic_messages,
)

# --- flags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), ("500ms", 0.5), (" 2 m ", 120.0)],
)
def test_durations_take_units(text: str, seconds: float) -> None:
    """Durations are seconds by default and accept ms, s, m and h."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5s", "5 minutes", "1d", "abc"])
def test_bad_durations_name_the_flag(text: str) -> None:
    """A duration that is not positive or has an unknown unit is a ConfigError for the flag."""
    with pytest.raises(ConfigError, match="positive duration") as info:
        parse_duration(text, "--wait")
    assert info.value.field == "--wait"


def test_default_levels_are_closed_loop_1_8_32() -> None:
    """Without flags the levels are concurrency 1, 8 and 32, closed loop."""
    assert parse_levels(None, None) == (Level(1), Level(8), Level(32))


def test_rates_make_open_loop_levels_capped_by_concurrency() -> None:
    """--rate lists open-loop levels; --concurrency is then their in-flight cap."""
    assert parse_levels("64", "0.5,2") == (Level(64, 0.5), Level(64, 2.0))
    assert parse_levels(None, "3") == (Level(None, 3.0),)
    assert parse_levels("8,16", "2") == (Level(8, 2.0), Level(16, 2.0))


def test_levels_vary_one_thing_at_a_time() -> None:
    """Several rates and several caps at once are refused."""
    with pytest.raises(ConfigError, match="single cap") as info:
        parse_levels("8,16", "1,2")
    assert info.value.field == "--concurrency"


@pytest.mark.parametrize(
    ("concurrency", "rate", "field"),
    [
        ("0", None, "--concurrency"),
        ("1,x", None, "--concurrency"),
        ("1.5", None, "--concurrency"),
        (None, "0", "--rate"),
        (None, "nan", "--rate"),
        (None, "fast", "--rate"),
    ],
)
def test_bad_levels_name_the_flag(concurrency: str | None, rate: str | None, field: str) -> None:
    """Non-positive or non-numeric levels raise ConfigError naming the flag."""
    with pytest.raises(ConfigError) as info:
        parse_levels(concurrency, rate)
    assert info.value.field == field


def test_level_labels() -> None:
    """Levels are labelled c=N, rate=R/s, or rate=R/s c<=N."""
    assert [lv.label for lv in (Level(8), Level(None, 2.5), Level(64, 0.5))] == [
        "c=8",
        "rate=2.5/s",
        "rate=0.5/s c<=64",
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"requests": 5, "duration_s": 10.0}, "--requests"),
        ({"requests": 0}, "--requests"),
        ({"input_tokens": 0}, "--input-tokens"),
        ({"output_tokens": -1}, "--output-tokens"),
        ({"warmup": -1}, "--warmup"),
        ({"reasoning_effort": "max"}, "--reasoning-effort"),
        ({"levels": ()}, "--concurrency"),
    ],
)
def test_bad_settings_name_the_flag(kwargs: dict[str, Any], field: str) -> None:
    """Impossible settings raise ConfigError naming the flag to fix."""
    with pytest.raises(ConfigError) as info:
        BenchSettings(url="http://x", **kwargs)
    assert info.value.field == field


def test_default_request_count_is_four_per_slot() -> None:
    """Without --requests or --duration a level sends 4 per slot, at least 8."""
    settings = BenchSettings(url="http://x")
    assert [settings.requests_for(Level(c)) for c in (1, 8, 32)] == [8, 32, 128]
    assert BenchSettings(url="http://x", duration_s=5.0).requests_for(Level(8)) is None


def test_the_api_key_never_appears_in_settings_output() -> None:
    """repr and JSON of the settings say a key is set, never what it is."""
    settings = BenchSettings(
        url="http://x", api_key="sk-very-secret", headers={"Modal-Secret": "s3"}
    )
    assert "sk-very-secret" not in repr(settings)
    assert "s3" not in repr(settings)
    assert "sk-very-secret" not in json.dumps(settings.to_json())
    assert settings.to_json()["api_key"] == "set"


# --- prompts -----------------------------------------------------------------------------------


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - a seeded workload, as in the benchmark


@given(st.integers(0, 2**32), st.integers(1, 3000))
def test_synthetic_prompts_have_the_requested_words(seed: int, words: int) -> None:
    """A synthetic prompt is the instruction plus exactly `words` single words."""
    (message,) = synthetic_messages(seeded(seed), words)
    text = message["content"]
    body = text.partition(":")[2]
    assert len(body.split()) == words
    assert body == "".join(" " + w for w in body.split())


@given(st.integers(0, 2**32))
def test_synthetic_prompts_follow_the_seed(seed: int) -> None:
    """The same seed gives the same prompt; the next seed (almost always) another one."""
    first = synthetic_messages(seeded(seed), 200)
    assert first == synthetic_messages(seeded(seed), 200)
    assert first != synthetic_messages(seeded(seed + 1), 200)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(text)
    return path


def test_prompts_file_is_read_line_by_line(tmp_path: Path) -> None:
    """Each non-blank line is one conversation; text parts are allowed as content."""
    path = write(
        tmp_path,
        '{"messages": [{"role": "system", "content": "be brief"}, '
        '{"role": "user", "content": "hi"}]}\n'
        "\n"
        '{"messages": [{"role": "user", "content": [{"type": "text", "text": "yo"}]}]}\n',
    )
    prompts = load_prompts(path)
    assert len(prompts) == 2
    assert prompts[0][1] == {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [
        ("{not json}\n", "prompts.jsonl:1", "one JSON object per line"),
        ('["a"]\n', "prompts.jsonl:1", '"messages"'),
        ('{"messages": []}\n', "prompts.jsonl:1.messages", "non-empty list"),
        ('{"messages": ["hi"]}\n', "prompts.jsonl:1.messages[0]", "role"),
        (
            '\n{"messages": [{"role": "robot", "content": "x"}]}\n',
            "prompts.jsonl:2.messages[0].role",
            "user",
        ),
        (
            '{"messages": [{"role": "user", "content": 5}]}\n',
            "prompts.jsonl:1.messages[0].content",
            "string",
        ),
        ("\n\n", "--prompts", "at least one prompt"),
    ],
)
def test_bad_prompts_name_the_line_and_field(
    tmp_path: Path, text: str, field: str, allowed: str
) -> None:
    """A bad prompts file raises ConfigError naming line and field, and what is allowed."""
    with pytest.raises(ConfigError) as info:
        load_prompts(write(tmp_path, text))
    assert info.value.field.endswith(field)
    assert allowed in info.value.allowed


def test_a_missing_prompts_file_is_a_config_error(tmp_path: Path) -> None:
    """A prompts path that cannot be read is reported as --prompts."""
    with pytest.raises(ConfigError, match="readable") as info:
        load_prompts(tmp_path / "missing.jsonl")
    assert info.value.field == "--prompts"


# --- error kinds -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (AuthenticationError("no", status=401), "http_401"),
        (HTTPStatusError("busy", status=503), "http_503"),
        (UpstreamError("boom", code=500), "upstream_500"),
        (UpstreamError("boom"), "upstream"),
        (ConnectTimeout("slow"), "connect_timeout"),
        (StallTimeout("quiet"), "stall_timeout"),
        (ConnectError("refused"), "connect"),
        (IncompleteStreamError("cut"), "incomplete_stream"),
        (ChunkParseError("bad"), "malformed_chunk"),
        (BenchmarkError("x"), "benchmark_error"),
        (RuntimeError("bug"), "unexpected_RuntimeError"),
    ],
)
def test_each_failure_has_a_stable_kind(error: BaseException, kind: str) -> None:
    """Failures are tallied under short stable names (the errors table's keys)."""
    assert error_kind(error) == kind


# --- progress ----------------------------------------------------------------------------------


def live(done: int, total: int | None = 10) -> LiveStats:
    return LiveStats(Level(8), done, 1, 3, 65.0, 1234.0, total, None)


def test_progress_off_a_terminal_prints_one_line_per_level() -> None:
    """Without a TTY only the finished level's line is written (no carriage returns)."""
    out = io.StringIO()
    bar = TerminalProgress(out, tty=False)
    bar.level_started(Level(8), 10, None)
    bar.update(live(5))
    bar.level_finished(live(10))
    text = out.getvalue()
    assert text.count("\n") == 1
    assert "\r" not in text
    assert "10/10 req" in text
    assert "1 err" in text
    assert "1,234 tok/s" in text
    assert "01:05" in text


def test_progress_on_a_terminal_redraws_in_place() -> None:
    """On a TTY each update rewrites the same line."""
    out = io.StringIO()
    bar = TerminalProgress(out, tty=True)
    bar.update(live(5))
    bar.update(live(6))
    assert out.getvalue().count("\r") == 2
    assert "\n" not in out.getvalue()
    assert "[############............]" in out.getvalue()


# --- the driver on a scripted client -----------------------------------------------------------

Fault = Callable[[ChatResult], None]


class ScriptedStream:
    """A stream that 'receives' a vLLM-shaped gpt-oss reply at scripted offsets."""

    def __init__(
        self,
        client: ScriptedClient,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int,
        extra: Any,
    ) -> None:
        self.client = client
        self.messages = messages
        self.max_tokens = max_tokens
        self.extra = extra
        self.result = ChatResult()

    async def __aenter__(self) -> ScriptedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def collect(self) -> ChatResult:
        c = self.client
        number = len(c.calls)
        c.calls.append(self)
        result = self.result
        result.started = c.clock()
        result.response_at = result.started
        await asyncio.sleep(0)
        fault = c.faults.get(number)
        if fault is not None and fault[0] == "before":
            raise fault[1]
        words = sum(len(str(m.get("content", "")).split(":")[-1].split()) for m in self.messages)
        prompt = words + c.template
        start = result.started

        def add(offset: float, delta: Delta | None, tokens: int, finish: str | None = None) -> None:
            choices = () if delta is None else (Choice(index=0, delta=delta, finish_reason=finish),)
            usage = Usage(prompt, tokens, prompt + tokens)
            result.chunks.append(ChatChunk(choices=choices, usage=usage, arrival=start + offset))

        add(c.ttft, Delta(role="assistant", content=""), 0)
        for i in range(3, self.max_tokens):  # tokens 0-2 are hidden harmony headers
            last = i == self.max_tokens - 1
            delta = Delta(reasoning="r") if i < self.max_tokens // 2 else Delta(content="c")
            add(c.ttft + i * c.itl, delta, i + 1, "length" if last else None)
            if fault is not None and fault[0] == "after" and i == 5:
                raise fault[1]
        add(c.ttft + (self.max_tokens - 1) * c.itl, None, self.max_tokens)
        result.done = True
        return result


class ScriptedClient:
    """Stands in for the stream Client: every call is recorded, faults by call number."""

    base_url = "http://scripted"

    def __init__(self, ttft: float = 0.2, itl: float = 0.01, template: int = 70) -> None:
        self.ttft, self.itl, self.template = ttft, itl, template
        self.calls: list[ScriptedStream] = []
        self.faults: dict[int, tuple[str, BaseException]] = {}
        self.now = 0.0

    def clock(self) -> float:
        self.now += 0.001
        return self.now

    async def wait_healthy(self, *, timeout_s: float, on_progress: Any = None) -> None:
        return None

    def stream_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        reasoning_effort: str | None,
        max_tokens: int,
        continuous_usage: bool,
        extra: Any,
    ) -> ScriptedStream:
        assert continuous_usage
        return ScriptedStream(self, messages, max_tokens, extra)


def settings(**kwargs: Any) -> BenchSettings:
    base: dict[str, Any] = {
        "url": "http://scripted",
        "levels": (Level(2),),
        "requests": 6,
        "warmup": 0,
        "input_tokens": 300,
        "output_tokens": 40,
        "scrape_metrics": False,
    }
    return BenchSettings(**{**base, **kwargs})


def no_cpu() -> float:
    """A CPU clock that never moves: the scripted runs are never client-bound."""
    return 0.0


async def run(client: ScriptedClient, **kwargs: Any) -> Any:
    budgets = kwargs.pop("budgets", None)
    cpu_clock = kwargs.pop("cpu_clock", no_cpu)
    return await run_benchmark(
        settings(**kwargs), client=client, clock=client.clock, cpu_clock=cpu_clock, budgets=budgets
    )


async def test_measured_requests_follow_the_metric_definitions() -> None:
    """Each measured request's TTFTs, TPOT and output tokens are those the server scripted."""
    client = ScriptedClient(ttft=0.2, itl=0.01)
    result = await run(client)
    (level,) = result.levels
    assert [r.index for r in level.records] == list(range(6))
    for record in level.records:
        m = record.metrics
        assert record.ok
        assert m.ttft_chunk_s == pytest.approx(0.2)
        assert m.ttft_s == pytest.approx(0.2 + 3 * 0.01)
        assert m.ttft_content_s == pytest.approx(0.2 + 20 * 0.01)
        assert m.tpot_s == pytest.approx(0.01)
        assert m.output_tokens == 40
    assert level.summary.completed == 6


async def test_warm_up_and_probe_are_sent_but_not_counted() -> None:
    """One probe and the warm-up go first with short outputs; only measured requests count."""
    client = ScriptedClient()
    result = await run(client, warmup=3)
    assert len(client.calls) == 1 + 3 + 6
    assert [c.max_tokens for c in client.calls[:4]] == [16, 16, 16, 16]
    assert {c.max_tokens for c in client.calls[4:]} == {40}
    assert result.levels[0].summary.requests == 6


async def test_fixed_output_lengths_are_asked_for() -> None:
    """Measured requests ask for exactly --output-tokens (ignore_eos and min_tokens)."""
    client = ScriptedClient()
    await run(client)
    assert client.calls[-1].extra == {"ignore_eos": True, "min_tokens": 40}
    client = ScriptedClient()
    await run(client, fixed_output=False)
    assert client.calls[-1].extra is None


async def test_a_server_refusing_ignore_eos_is_benchmarked_without_it() -> None:
    """A 400 to the probe's ignore_eos/min_tokens is retried without them, with a warning."""
    client = ScriptedClient()
    client.faults[0] = ("before", HTTPStatusError("unknown field ignore_eos", status=400))
    result = await run(client)
    assert not result.fixed_output
    assert client.calls[1].extra is None
    assert client.calls[-1].extra is None
    assert any("ignore_eos" in w for w in result.warnings)


@pytest.mark.parametrize("status", [401, 404])
async def test_a_probe_that_every_request_would_repeat_stops_the_run(status: int) -> None:
    """A wrong key or model fails the probe, and the run stops at once with the reason."""
    client = ScriptedClient()
    error = (AuthenticationError if status == 401 else HTTPStatusError)("nope", status=status)
    client.faults[0] = ("before", error)
    with pytest.raises(BenchmarkError, match=f"every request would fail.*http_{status}"):
        await run(client)
    assert len(client.calls) == 1


async def test_synthetic_prompts_are_calibrated_to_the_requested_length() -> None:
    """The probe measures the template's tokens; measured prompts then have --input-tokens."""
    client = ScriptedClient(template=77)
    result = await run(client)
    assert result.template_tokens == 77
    assert {r.prompt_tokens for r in result.levels[0].records} == {300}


async def test_failed_requests_are_recorded_by_kind_never_dropped() -> None:
    """Each failure is a record with its kind and message; the rest are still measured."""
    client = ScriptedClient()
    # Calls: 0 is the probe; measured requests are calls 1-6.
    client.faults[2] = ("before", HTTPStatusError("busy", status=503))
    client.faults[4] = ("after", IncompleteStreamError("cut off"))
    result = await run(client)
    level = result.levels[0]
    assert level.summary.errors == {"http_503": 1, "incomplete_stream": 1}
    assert level.summary.completed == 4
    failed = [r for r in level.records if not r.ok]
    assert {r.error for r in failed} == {"busy", "cut off"}
    cut = next(r for r in failed if r.error_kind == "incomplete_stream")
    assert len(cut.chunk_times_s) > 0  # what arrived before the cut is kept


async def test_a_run_where_everything_fails_raises_with_the_records() -> None:
    """Not one success: AllRequestsFailed says why, and carries every failed record."""
    client = ScriptedClient()
    for call in range(2, 8):
        client.faults[call] = ("before", HTTPStatusError("down", status=503))
    client.faults[1] = ("before", HTTPStatusError("down", status=503))
    with pytest.raises(AllRequestsFailed, match="http_503 x6") as info:
        await run(client)
    assert len(info.value.run.levels[0].records) == 6


async def test_open_loop_records_queueing_for_every_request() -> None:
    """Open-loop requests all run, each with a client-side queue time (>= 0)."""
    client = ScriptedClient()
    result = await run(client, levels=(Level(1, 2000.0),), requests=5)
    records = result.levels[0].records
    assert len(records) == 5
    assert all(r.queue_s is not None and r.queue_s >= 0 for r in records)
    assert result.levels[0].summary.latency["queue"] is not None


async def test_budgets_are_checked_per_level() -> None:
    """The level's budgets are evaluated; the run says whether they held."""
    budgets = parse_budgets(
        {"g": {"concurrency": {"2": {"tpot_p50_ms": 11, "ttft_chunk_p99_ms": 250}}}}
    ).section("g")
    held = await run(ScriptedClient(itl=0.01), budgets=budgets)
    assert held.budgets_held is True
    assert [c.key for c in held.levels[0].checks] == ["tpot_p50_ms", "ttft_chunk_p99_ms"]
    failed = await run(ScriptedClient(itl=0.02), budgets=budgets)
    assert failed.budgets_held is False
    assert [c.passed for c in failed.levels[0].checks] == [False, True]


async def test_goodput_uses_the_level_budgets() -> None:
    """With budgets, goodput counts the requests within every per-request limit."""
    budgets = parse_budgets({"g": {"all": {"ttft_chunk_ms": 150}}}).section("g")
    result = await run(ScriptedClient(ttft=0.2), budgets=budgets)
    summary = result.levels[0].summary
    assert summary.good_requests == 0
    assert summary.goodput_fraction == 0.0


async def test_the_json_has_every_request_and_no_secret(tmp_path: Path) -> None:
    """The JSON file holds the schema, each request's record and chunk times, never the key."""
    result = await run(ScriptedClient(), api_key="sk-do-not-print")
    path = tmp_path / "run.json"
    result.write_json(path)
    text = path.read_text()
    assert "sk-do-not-print" not in text
    doc = json.loads(text)
    assert doc["schema"] == "gptoss-modal-bench/1"
    (level,) = doc["levels"]
    assert len(level["requests"]) == 6
    first = level["requests"][0]
    assert first["tpot_ms"] == pytest.approx(10.0)
    assert len(first["chunks"]["t_ms"]) == len(first["chunks"]["tokens"]) == 39
    assert level["summary"]["latency_ms"]["itl"]["p50"] == pytest.approx(10.0)


async def test_a_client_bound_level_says_so() -> None:
    """A level whose event loop used more than 60% of a core warns that it is client-bound."""
    cpu = iter(range(0, 10_000, 100))  # 100 s of CPU per reading: far above the wall time
    result = await run(ScriptedClient(), cpu_clock=lambda: float(next(cpu)))
    (level,) = result.levels
    assert level.client_bound
    assert any(w.startswith("client-bound") for w in level.warnings)
    calm = await run(ScriptedClient())
    assert not calm.levels[0].client_bound
    assert not any(w.startswith("client-bound") for w in calm.levels[0].warnings)
