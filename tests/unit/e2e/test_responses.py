"""The e2e suite's Responses checks (tests/e2e/responses.py), offline: the metric definitions
on stamped events, the run against servers on port 0 (the mock once it serves /v1/responses,
a replay server that cuts streams), and the budget verdicts both ways."""

from __future__ import annotations

from typing import Any

import pytest

from gptoss_modal import Client, ResponseEventDecoder, ResponseResult
from gptoss_modal.bench.budgets import Budgets, parse_budgets
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM
from tests.e2e.responses import (
    function_call_response,
    record_responses,
    response_metrics,
    responses_run,
)
from tests.e2e.results import E2EResults
from tests.strategies_stream import DROP, ReplayServer, Reply
from tests.unit.stream.test_responses import script, wire

TTFT_MS, ITL_MS = 60.0, 4.0  # what the mock is told; margins below keep a loaded machine
REQUESTS = 3


def stamped(events: list[dict[str, Any]], arrivals: list[float]) -> ResponseResult:
    """A result whose i-th event arrived at ``arrivals[i]`` seconds after the start."""
    result = ResponseResult(started=0.0)
    decoder = ResponseEventDecoder()
    for event, at in zip(events, arrivals, strict=True):
        decoder.feed(wire([event]), result.chunks, arrival=at)
    result.done = True
    return result


def budgets(**limits: float) -> Budgets:
    """A one-section budgets file with these level-1 limits."""
    return parse_budgets({"T": {"concurrency": {"1": limits}}}).section("T")


def test_metrics_time_decode_from_the_first_output_delta() -> None:
    """TTFT is the first reasoning delta's arrival, TTFT-content the first answer delta's,
    TPOT (last output - first output) / (output tokens - 1) with the usage's 5 tokens, e2e
    the terminal event's arrival; not timed from response.created (partner: that would give
    a different TPOT)."""
    events = script(["a", "b"], ["c", "d"])
    arrivals = [0.5 + 0.1 * i for i in range(len(events))]
    result = stamped(events, arrivals)
    metrics = response_metrics(result)
    kinds = [e["type"] for e in events]
    first = arrivals[kinds.index("response.reasoning_text.delta")]
    content = arrivals[kinds.index("response.output_text.delta")]
    last = arrivals[len(kinds) - 1 - kinds[::-1].index("response.output_text.delta")]
    assert metrics.ttft_chunk_s == pytest.approx(arrivals[0])
    assert metrics.ttft_s == pytest.approx(first)
    assert metrics.ttft_content_s == pytest.approx(content)
    assert metrics.output_tokens == 5
    assert metrics.tokens_from_usage
    assert metrics.tpot_s == pytest.approx((last - first) / 4)
    assert metrics.tpot_s != pytest.approx((last - arrivals[0]) / 4)
    assert metrics.e2e_s == pytest.approx(arrivals[-1])
    assert metrics.prompt_tokens == 7


async def started_mock(**fields: Any) -> MockVLLM:
    """A started in-process mock (it serves /v1/responses)."""
    server = MockVLLM(MockConfig(**fields))
    await server.start()
    return server


async def test_the_run_measures_what_the_mock_was_told() -> None:
    """Against the mock told TTFT and ITL, the run's TTFT p50 is at least the TTFT it was told
    and its TPOT at least half the ITL; budgets far above pass and budgets below what was told fail
    (the partner a run that measured nothing, or wrongly, would not satisfy)."""
    server = await started_mock(ttft_ms=TTFT_MS, itl_ms=ITL_MS, content_tokens=12)
    try:
        async with Client(server.url) as client:
            loose = await responses_run(
                client,
                REQUESTS,
                budgets(ttft_p50_ms=TTFT_MS * 50, tpot_p50_ms=ITL_MS * 50, max_error_rate=0.0),
            )
            tight = await responses_run(
                client, REQUESTS, budgets(ttft_p50_ms=TTFT_MS / 2, tpot_p50_ms=ITL_MS / 4)
            )
    finally:
        await server.stop()
    ttft, tpot = loose.summary.latency["ttft"], loose.summary.latency["tpot"]
    assert ttft is not None
    assert tpot is not None
    assert ttft.p50 * 1000 >= TTFT_MS * 0.9
    # The usage counts harmony's hidden header tokens too, which stream no delta: the span
    # between visible deltas covers fewer steps than tokens - 1, so TPOT reads a little low.
    assert tpot.p50 * 1000 >= ITL_MS * 0.5
    assert loose.summary.completed == REQUESTS
    assert loose.checks
    assert loose.failed == []
    assert {check.key for check in tight.failed} == {"ttft_p50_ms", "tpot_p50_ms"}
    results = E2EResults(app_name="test", gpu="B200")
    record_responses(loose, results)
    assert results.measurements["responses_ttft_p50_ms"] == pytest.approx(ttft.p50 * 1000)


async def test_the_function_call_request_gets_a_call_from_the_mock() -> None:
    """The e2e function-call request, against the mock, ends with a get_weather call."""
    server = await started_mock()
    try:
        async with Client(server.url) as client:
            result = await function_call_response(client)
    finally:
        await server.stop()
    assert result.done
    assert [call.name for call in result.output.function_calls] == ["get_weather"]


async def test_cut_streams_count_as_errors_and_fail_the_error_budget() -> None:
    """Every stream cut before its terminal event is an IncompleteStreamError in the counts,
    the run goes on, and max_error_rate=0 fails."""
    writes: list[bytes | float | str] = [wire(script(["a"], ["b"])[:4]), DROP]
    async with ReplayServer(Reply(writes)) as server, Client(server.url, max_retries=0) as client:
        level = await responses_run(client, REQUESTS, budgets(max_error_rate=0.0))
    assert level.summary.completed == 0
    assert level.summary.errors == {"IncompleteStreamError": REQUESTS}
    assert [check.key for check in level.failed] == ["max_error_rate"]
