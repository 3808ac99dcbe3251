"""One stream at a time through the load driver, checked against a budgets section.

The e2e suite's latency check, kept apart from the deployment so it can be exercised offline
against the mock server: same driver, definitions and budgets format as `gptoss-modal bench`.
"""

from __future__ import annotations

from gptoss_modal.bench import BenchRun, BenchSettings, Level, LevelResult, run_benchmark
from gptoss_modal.bench.budgets import Budgets
from tests.e2e.results import E2EResults
from tests.e2e.settings import E2ESettings

HEALTH_TIMEOUT_S = 60.0  # the server is already healthy when this runs


async def one_stream_run(
    url: str, api_key: str | None, settings: E2ESettings, budgets: Budgets
) -> BenchRun:
    """Run level c=1 (``settings.warm_requests`` measured requests after a warm-up)."""
    bench = BenchSettings(
        url=url,
        api_key=api_key,
        model="llm",
        levels=(Level(1),),
        requests=settings.warm_requests,
        input_tokens=settings.input_tokens,
        output_tokens=settings.output_tokens,
        reasoning_effort="low",
        health_timeout_s=HEALTH_TIMEOUT_S,
    )
    return await run_benchmark(bench, budgets=budgets)


def record(run: BenchRun, results: E2EResults) -> LevelResult:
    """Put the level's headline numbers and budget checks into the e2e results."""
    (level,) = run.levels
    summary = level.summary_doc()
    for metric in ("ttft", "ttft_content", "tpot"):
        if (dist := summary.latency_ms.get(metric)) is not None:
            results.measurements[f"{metric}_p50_ms"] = dist.p50
            results.measurements[f"{metric}_p95_ms"] = dist.p95
    if summary.stream_tokens_per_s is not None:
        results.measurements["stream_tokens_per_s"] = summary.stream_tokens_per_s.p50
    results.checks = list(level.checks)
    return level
