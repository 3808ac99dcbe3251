"""The run on a scripted client: probe, warm-up, load patterns, records, failures, budgets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gptoss_modal import (
    AuthenticationError,
    BenchmarkError,
    HTTPStatusError,
    IncompleteStreamError,
)
from gptoss_modal.bench.budgets import parse_budgets
from gptoss_modal.bench.run import AllRequestsFailed
from gptoss_modal.bench.settings import Level
from tests.unit.bench.scripted import ScriptedClient, run


async def test_measured_requests_follow_the_metric_definitions() -> None:
    """Each measured request's TTFTs, TPOT and output tokens are those the server scripted."""
    client = ScriptedClient(ttft=0.2, itl=0.01)
    result = await run(client)
    (level,) = result.levels
    assert [r.index for r in level.records] == list(range(6))
    for record in level.records:
        m = record.metrics
        assert record.ok
        assert m is not None
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
    assert doc["schema"] == "gptoss-modal-bench/2"
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
