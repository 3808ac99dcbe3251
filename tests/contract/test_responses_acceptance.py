"""Issue #13's acceptance against the mock's ``/v1/responses``, each vLLM version's mode:
``gptoss-modal chat --api responses`` shows reasoning, then the answer, then the timing line;
``gptoss-modal bench --api responses`` reports the TTFT and TPOT the mock was told within the
chat benchmark's margins (``test_bench_mock.within``); and ``bench --scenario agentic --api
responses`` grows each conversation's prompt turn by turn with only valid tool calls.

The timed mocks run in their own processes, as in ``test_bench_mock.py``, each in its own xdist
group so that `make test` starts each once; the quick mock, timed by nothing, runs in a thread
(the CLI runs its own event loop).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_modal.bench import BenchSettings, Level, run_benchmark
from gptoss_modal.cli import EXIT_OK, main
from gptoss_modal.serve.options import VLLM_VERSIONS, VllmVersion
from gptoss_modal.testing.mock_server import MockConfig, run_mock_in_thread
from tests.contract.test_bench_mock import (
    HIDDEN_PREFIX_TOKENS,
    ITL_MS,
    TTFT_MS,
    timed_mock_fixture,
    within,
)

pytestmark = pytest.mark.mock_only

TURNS = 3
# More than chat's 24: the Responses TPOT runs from the first output delta, 3 hidden tokens after
# the first token, over all tokens less one, so it reads 3/(n-1) low: 6% at 48 (18.7 ms of the
# 20, the lower margin is 18), 13% at 24, which would fail.
OUTPUT_TOKENS = 48
TIMING_LINE = re.compile(r"time to first token \d+\.\d\d s · .*time to last token \d+\.\d\d s")


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's credentials out of the requests."""
    for name in ("GPTOSS_API_KEY", "GPTOSS_MODAL_KEY", "GPTOSS_MODAL_SECRET"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module", params=VLLM_VERSIONS)
def fast_mock(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """A quick mock in a thread of this process, in each version's mode: its URL and version."""
    version: VllmVersion = request.param
    config = MockConfig(vllm_version=version, ttft_ms=20.0, itl_ms=1.0, content_tokens=12)
    with run_mock_in_thread(config) as mock:
        yield mock.url, version


def test_chat_shows_reasoning_then_the_answer_then_the_timing_line(
    fast_mock: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """stdout: the reasoning, a blank line, then the answer (both non-empty); stderr: the
    timing line; exit 0, for each version's Responses bytes."""
    url, version = fast_mock
    code = main(["chat", url, "Say hello.", "--api", "responses", "--reasoning-effort", "low"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK, (version, err)
    reasoning, blank, answer = out.partition("\n\n")
    assert blank, (version, out)
    assert reasoning.strip(), (version, out)
    assert answer.strip(), (version, out)
    assert TIMING_LINE.search(err), (version, err)


def test_the_agentic_scenario_grows_prompts_with_valid_calls(
    fast_mock: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per conversation each turn's prompt is longer than the last; every tool call the mock
    makes is valid; the JSON records ``api: responses``."""
    url, version = fast_mock
    out = tmp_path / "run.json"
    argv = ["bench", url, "--scenario", "agentic", "--api", "responses", "--turns", str(TURNS)]
    argv += ["--concurrency", "2", "--quiet", "--output-tokens", "96", "--json", str(out)]
    code = main(argv)
    printed = capsys.readouterr().out
    assert code == 0, (version, printed)
    assert "tool calls: all valid" in printed
    doc = json.loads(out.read_text())
    assert doc["settings"]["api"] == "responses"
    (level,) = doc["levels"]
    by_conversation: dict[str, list[tuple[int, int]]] = {}
    for record in level["requests"]:
        assert record["ok"], record
        by_conversation.setdefault(record["conversation"], []).append(
            (record["turn"], record["prompt_tokens"])
        )
    assert by_conversation
    for turns in by_conversation.values():
        prompts = [tokens for _, tokens in sorted(turns)]
        assert len(prompts) == TURNS
        assert all(b > a for a, b in itertools.pairwise(prompts)), prompts
    calls = level["summary"]["tool_calls"]
    assert calls["calls"] >= 1
    assert (calls["invalid"], calls["invalid_rate"]) == (0, 0.0)


timed_mock = timed_mock_fixture("responses-timed")


@pytest.mark.parametrize("concurrency", [1, 64])
async def test_bench_responses_reports_the_ttft_and_tpot_the_mock_was_told(
    timed_mock: tuple[str, int], concurrency: int
) -> None:
    """p50 TTFT (first output delta) and TPOT match what the mock was told, within chat's
    margins, at concurrency 1 and 64, stream interval 1 and 4; the first event
    (``response.created``, sent before generating) comes well before the first delta."""
    url, interval = timed_mock
    settings = BenchSettings(
        url=url,
        levels=(Level(concurrency),),
        requests=max(3, concurrency),
        warmup=0 if concurrency == 1 else None,
        input_tokens=200,
        output_tokens=OUTPUT_TOKENS,
        api="responses",
    )
    result = await run_benchmark(settings)
    (level,) = result.levels
    summary = level.summary
    assert summary.completed == summary.requests
    latency = summary.latency
    ttft_chunk, ttft, tpot = (latency[m] for m in ("ttft_chunk", "ttft", "tpot"))
    assert ttft_chunk is not None
    assert ttft is not None
    assert tpot is not None
    # As for chat: the first delta is the first output at or after harmony's hidden prefix.
    visible_at = interval * math.ceil(HIDDEN_PREFIX_TOKENS / interval)
    report = (
        f"c={concurrency} interval={interval}: first event {ttft_chunk.p50 * 1e3:.1f} ms, "
        f"ttft {ttft.p50 * 1e3:.1f} ms, tpot {tpot.p50 * 1e3:.2f} ms"
    )
    print(report)
    assert within(ttft.p50, TTFT_MS + visible_at * ITL_MS), report
    assert within(tpot.p50, ITL_MS), report
    # The partner check: a TTFT taken at the first event (sent at once) is far below TTFT_MS.
    assert ttft_chunk.p50 * 1000.0 < 0.5 * TTFT_MS, report
