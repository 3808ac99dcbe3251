"""A level's result from what it measured, pure: records and ``/metrics`` deltas in, summary out.

:func:`summarise` applies the statistics of :mod:`gptoss_modal.bench.stats` to the level's
successful requests, the spec-decode acceptance and server-side means between the two scrapes
(:mod:`gptoss_modal.bench.prometheus`), the level's budgets (:mod:`gptoss_modal.bench.budgets`),
and says what a reader should know (a client-bound level, ITL per chunk, too few requests,
invalid tool calls). Agentic levels also get per-turn numbers, the prefix-cache hit share and
tool-call validity (:mod:`gptoss_modal.bench.agentic_summary`).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Final

from gptoss_modal.bench.agentic_summary import cache_doc, tool_calls_doc, turn_docs
from gptoss_modal.bench.budgets import evaluate_budgets, measured_values
from gptoss_modal.bench.cost import GpuPrice, level_cost
from gptoss_modal.bench.prometheus import (
    MetricsSnapshot,
    SpecDecode,
    histogram_mean_between,
    spec_decode_between,
)
from gptoss_modal.bench.records import RequestRecord
from gptoss_modal.bench.results import CLIENT_BOUND_FRACTION, LevelResult
from gptoss_modal.bench.settings import Level
from gptoss_modal.bench.stats import LevelSummary, slo_from_limits, summarize_level

__all__ = ["SERVER_HISTOGRAMS", "LevelMeasurement", "summarise"]

# Server-side histograms whose mean over a level is reported beside the client's numbers.
SERVER_HISTOGRAMS: Final = {
    "ttft": "vllm:time_to_first_token_seconds",
    "itl": "vllm:inter_token_latency_seconds",
    "e2e": "vllm:e2e_request_latency_seconds",
    "queue": "vllm:request_queue_time_seconds",
}


@dataclass(frozen=True)
class LevelMeasurement:
    """What a level measured: its records, wall and CPU seconds, the scrapes before and after
    it (``None``: not read), and the warm-up's failures by kind."""

    records: list[RequestRecord]
    wall_s: float
    cpu_s: float
    before: MetricsSnapshot | None = None
    after: MetricsSnapshot | None = None
    warmup_errors: dict[str, int] = field(default_factory=dict)


def _server_side(
    before: MetricsSnapshot | None, after: MetricsSnapshot | None
) -> tuple[SpecDecode | None, dict[str, float]]:
    """Spec-decode acceptance and the server's histogram means between two scrapes."""
    if before is None or after is None:
        return None, {}
    server = {
        name: mean
        for name, metric in SERVER_HISTOGRAMS.items()
        if (mean := histogram_mean_between(before, after, metric)) is not None
    }
    return spec_decode_between(before, after), server


def _warnings(result: LevelResult, planned_requests: int | None) -> list[str]:
    """What a reader of the level's numbers should know."""
    level, summary = result.level, result.summary
    warnings: list[str] = []
    if result.client_bound:
        warnings.append(
            f"client-bound: the benchmark's event loop used {result.cpu_fraction:.0%} of a "
            f"core (over {CLIENT_BOUND_FRACTION:.0%}); latencies include time spent waiting "
            "for the client, so lower the concurrency or run the client on a bigger machine"
        )
    if summary.completed and not summary.itl_per_token:
        warnings.append(
            "the server sent no per-chunk usage (continuous_usage_stats): ITL is per chunk, "
            "not per token"
        )
    concurrency = level.concurrency or 1
    if level.rate is None and planned_requests is not None and planned_requests < concurrency:
        warnings.append(
            f"only {planned_requests} requests at concurrency {level.concurrency}: the level "
            f"never has {level.concurrency} in flight, so its throughput is not that "
            "concurrency's"
        )
    calls = result.tool_calls
    if calls is not None and calls.invalid:
        warnings.append(
            f"{calls.invalid} of {calls.calls} tool calls were invalid: "
            + ", ".join(f"{kind} x{n}" for kind, n in calls.problems.items())
        )
    if result.warmup_errors:
        warnings.append(
            "warm-up requests failed: "
            + ", ".join(f"{kind} x{n}" for kind, n in result.warmup_errors.items())
        )
    return warnings


def _level_summary(
    records: list[RequestRecord], wall_s: float, limits: dict[str, float] | None
) -> LevelSummary:
    ok = [r.metrics for r in records if r.ok and r.metrics is not None]
    errors = collections.Counter(r.error_kind or "unknown" for r in records if not r.ok)
    queue = [r.queue_s for r in records if r.queue_s is not None]
    return summarize_level(
        ok, errors, wall_s, queue_s=queue, slo_s=slo_from_limits(limits) if limits else None
    )


def summarise(
    level: Level,
    measured: LevelMeasurement,
    *,
    limits: dict[str, float] | None = None,
    planned_requests: int | None = None,
    price: GpuPrice | None = None,
    compare_usd_per_mtok: float | None = None,
) -> LevelResult:
    """The level's result: its records in order, summary, server-side numbers, budget checks
    (``limits``: the level's budgets) and warnings. ``planned_requests`` is how many requests
    the level was to send (``None``: for a duration)."""
    records = sorted(measured.records, key=lambda r: r.index)
    summary = _level_summary(records, measured.wall_s, limits)
    spec, server = _server_side(measured.before, measured.after)
    wall, cpu = measured.wall_s, measured.cpu_s
    result = LevelResult(
        level=level,
        records=records,
        summary=summary,
        spec_decode=spec,
        server_s=server,
        cpu_s=cpu,
        cpu_fraction=cpu / wall if wall > 0 else 0.0,
        limits=limits,
        warmup_errors=dict(measured.warmup_errors),
        cost=level_cost(
            price,
            output_tokens=summary.output_tokens,
            input_tokens=summary.input_tokens,
            duration_s=summary.duration_s,
            compare_usd_per_mtok=compare_usd_per_mtok,
        ),
        turns=turn_docs(records),
        cache=cache_doc(records),
        tool_calls=tool_calls_doc(records),
    )
    if limits is not None:
        values = measured_values(
            summary,
            acceptance_rate=spec.acceptance_rate if spec else None,
            acceptance_length=spec.acceptance_length if spec else None,
            usd_per_s=price.usd_per_s if price else None,
            tool_call_invalid_rate=result.tool_calls.invalid_rate if result.tool_calls else None,
        )
        result.checks = evaluate_budgets(limits, values)
    result.warnings = _warnings(result, planned_requests)
    return result
