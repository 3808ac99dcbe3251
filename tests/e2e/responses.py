"""The e2e suite's Responses API checks, kept apart from the deployment so they run offline
against the mock: one request with a function tool (reasoning, a call, usage), and a run of
sequential Responses requests whose TTFT, TPOT and decode rate are held against the same
level-1 budgets (``[<GPU>.concurrency.1]``) as the chat stream.

The metrics are the benchmark's definitions (:mod:`gptoss_modal.bench.stats`) applied to a
:class:`~gptoss_modal.ResponseResult`: TTFT to the first output delta, TPOT from it to the
last over the output tokens after the first (``response.created`` precedes any token, so the
first event is no clock for decode, unlike chat's first chunk).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

from gptoss_modal import Client, GptossModalError, ResponseResult
from gptoss_modal.bench.budgets import BudgetCheck, Budgets, evaluate_budgets, measured_values
from gptoss_modal.bench.stats import LevelSummary, RequestMetrics, summarize_level
from gptoss_modal.stream.accumulator import time_per_output_token_s
from tests.e2e.results import E2EResults

PROMPT = "Name three prime numbers."
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
WEATHER_PROMPT = "What is the weather in Paris right now? Use the get_weather tool."
MAX_OUTPUT_TOKENS = 1024  # low-effort reasoning and a short answer fit well within this


def response_metrics(result: ResponseResult) -> RequestMetrics:
    """One finished Responses request's latencies, as the benchmark defines them."""
    usage = result.usage
    tokens = usage.output_tokens if usage is not None else sum(e.has_output for e in result.chunks)
    first_output = None if result.ttft_s is None else result.started + result.ttft_s
    last_output = None if result.ttlt_s is None else result.started + result.ttlt_s
    last_event = result.chunks[-1].arrival - result.started if result.chunks else None
    return RequestMetrics(
        ttft_chunk_s=result.first_chunk_s,
        ttft_s=result.ttft_s,
        ttft_content_s=result.ttft_content_s,
        tpot_s=time_per_output_token_s(tokens, first_output, last_output),
        e2e_s=last_event,
        output_tokens=tokens,
        prompt_tokens=usage.input_tokens if usage is not None else None,
        tokens_from_usage=usage is not None,
        itl_s=tuple(result.gaps_s()),
        itl_tokens=tuple(1 for _ in result.gaps_s()),
        itl_per_token=False,  # one gap per delta event: vLLM sends no running token count
    )


@dataclass(frozen=True)
class ResponsesLevel:
    """A run of sequential Responses requests: its summary and its level-1 budget checks."""

    summary: LevelSummary
    checks: list[BudgetCheck]

    @property
    def failed(self) -> list[BudgetCheck]:
        """The checks that did not hold."""
        return [check for check in self.checks if not check.passed]


async def responses_run(client: Client, requests: int, budgets: Budgets) -> ResponsesLevel:
    """``requests`` Responses requests one after another (after one uncounted warm-up),
    summarised and held against the level-1 budgets. A failed request counts as an error by
    its type, as the benchmark counts them, and never stops the run."""
    # The warm-up is not measured: a failure of it shows again in the counted requests.
    with contextlib.suppress(GptossModalError):
        await client.respond(PROMPT, reasoning_effort="low", max_output_tokens=16)
    ok: list[RequestMetrics] = []
    errors: dict[str, int] = {}
    began = time.monotonic()
    for _ in range(requests):
        try:
            result = await client.respond(
                PROMPT, reasoning_effort="low", max_output_tokens=MAX_OUTPUT_TOKENS
            )
        except GptossModalError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            continue
        ok.append(response_metrics(result))
    summary = summarize_level(ok, errors, time.monotonic() - began)
    checks = evaluate_budgets(budgets.for_level(1), measured_values(summary))
    return ResponsesLevel(summary, checks)


def record_responses(level: ResponsesLevel, results: E2EResults) -> None:
    """Put the Responses run's headline numbers into the e2e results, beside chat's."""
    for metric in ("ttft", "ttft_content", "tpot"):
        if (dist := level.summary.latency.get(metric)) is not None:
            results.measurements[f"responses_{metric}_p50_ms"] = dist.p50 * 1000.0
            results.measurements[f"responses_{metric}_p95_ms"] = dist.p95 * 1000.0


async def function_call_response(client: Client) -> ResponseResult:
    """One streamed Responses request with a function tool, to its terminal event."""
    return await client.respond(
        WEATHER_PROMPT,
        reasoning_effort="low",
        tools=[WEATHER_TOOL],
        max_output_tokens=MAX_OUTPUT_TOKENS,
    )
