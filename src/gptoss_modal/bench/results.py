"""What a run produced, in memory: each level's records, summary and checks, and the whole run.

:meth:`BenchRun.to_doc` turns it into the typed JSON document of
:mod:`gptoss_modal.bench.schema`; :meth:`BenchRun.write_json` writes that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from gptoss_modal._version import __version__
from gptoss_modal.bench.budgets import BudgetCheck
from gptoss_modal.bench.prometheus import SpecDecode
from gptoss_modal.bench.records import RequestRecord
from gptoss_modal.bench.schema import (
    BudgetCheckDoc,
    BudgetsDoc,
    CacheDoc,
    ClientDoc,
    CostDoc,
    DistributionDoc,
    GoodputDoc,
    LevelBudgetsDoc,
    LevelEntryDoc,
    RunDoc,
    SpecDecodeDoc,
    SummaryDoc,
    ToolCallsDoc,
    ToolDoc,
    TurnDoc,
    encode_run,
)
from gptoss_modal.bench.settings import BenchSettings, Level
from gptoss_modal.bench.stats import Distribution, LevelSummary

__all__ = ["CLIENT_BOUND_FRACTION", "BenchRun", "LevelResult"]

CLIENT_BOUND_FRACTION: Final = 0.6  # of one core: above it the client distorts what it measures
_MS: Final = 1000.0


def _distribution(dist: Distribution | None, factor: float) -> DistributionDoc | None:
    if dist is None:
        return None
    return DistributionDoc(
        count=dist.count,
        mean=dist.mean * factor,
        p50=dist.p50 * factor,
        p90=dist.p90 * factor,
        p95=dist.p95 * factor,
        p99=dist.p99 * factor,
        min=dist.min * factor,
        max=dist.max * factor,
    )


def _goodput(s: LevelSummary) -> GoodputDoc | None:
    if s.good_requests is None:
        return None
    return GoodputDoc(
        requests=s.good_requests,
        per_s=s.goodput_per_s,
        fraction=s.goodput_fraction,
        limits_ms={k: v * _MS for k, v in s.slo_s.items()},
    )


def _spec_decode(spec: SpecDecode | None) -> SpecDecodeDoc | None:
    if spec is None:
        return None
    return SpecDecodeDoc(
        drafts=spec.drafts,
        draft_tokens=spec.draft_tokens,
        accepted=spec.accepted,
        acceptance_rate=spec.acceptance_rate,
        acceptance_length=spec.acceptance_length,
        per_position=list(spec.per_position),
    )


def _check(c: BudgetCheck) -> BudgetCheckDoc:
    return BudgetCheckDoc(
        key=c.key, limit=c.limit, measured=c.measured, kind=c.kind, passed=c.passed
    )


@dataclass
class LevelResult:
    """One level's records, summary, server-side numbers, budgets and warnings."""

    level: Level
    records: list[RequestRecord]
    summary: LevelSummary
    spec_decode: SpecDecode | None = None
    server_s: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    cpu_fraction: float = 0.0
    limits: dict[str, float] | None = None
    checks: list[BudgetCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    warmup_errors: dict[str, int] = field(default_factory=dict)
    cost: CostDoc | None = None  # with the GPUs' price (--gpu)
    turns: list[TurnDoc] = field(default_factory=list)  # agentic: per turn number
    cache: CacheDoc | None = None  # where the server reported cached prompt tokens
    tool_calls: ToolCallsDoc | None = None  # where requests offered tools

    @property
    def client_bound(self) -> bool:
        """Whether the event loop was busy enough to distort what it measured."""
        return self.cpu_fraction > CLIENT_BOUND_FRACTION

    @property
    def budgets_held(self) -> bool | None:
        """``None`` without budgets, else whether every check passed."""
        if self.limits is None:
            return None
        return all(check.passed for check in self.checks)

    def summary_doc(self) -> SummaryDoc:
        """The level's summary as written to the JSON file (latencies in milliseconds)."""
        s = self.summary
        return SummaryDoc(
            level=self.level.to_doc(),
            requests=s.requests,
            completed=s.completed,
            failed=s.failed,
            errors=s.errors,
            error_rate=s.error_rate,
            duration_s=s.duration_s,
            input_tokens=s.input_tokens,
            output_tokens=s.output_tokens,
            output_tokens_per_s=s.output_tokens_per_s,
            requests_per_s=s.requests_per_s,
            goodput=_goodput(s),
            latency_ms={metric: _distribution(d, _MS) for metric, d in s.latency.items()},
            itl_per_token=s.itl_per_token,
            stream_tokens_per_s=_distribution(s.stream_tokens_per_s, 1.0),
            spec_decode=_spec_decode(self.spec_decode),
            server_ms={f"{k}_mean": v * _MS for k, v in self.server_s.items()},
            client=ClientDoc(
                cpu_s=self.cpu_s, cpu_fraction=self.cpu_fraction, client_bound=self.client_bound
            ),
            warmup_errors=self.warmup_errors,
            warnings=self.warnings,
            budgets=None
            if self.limits is None
            else LevelBudgetsDoc(
                limits=self.limits,
                held=self.budgets_held,
                checks=[_check(c) for c in self.checks],
            ),
            cost=self.cost,
            turns=self.turns,
            cache=self.cache,
            tool_calls=self.tool_calls,
        )


@dataclass
class BenchRun:
    """A whole run: its settings, each level's result, and what applies to all of them."""

    settings: BenchSettings
    levels: list[LevelResult] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    budgets_section: str | None = None
    budgets_source: str | None = None
    template_tokens: int | None = None
    fixed_output: bool = True
    warnings: list[str] = field(default_factory=list)
    budgets_not_measured: list[str] = field(default_factory=list)  # level tables not run
    vllm_version: str | None = None  # the server's /version

    @property
    def budgets_held(self) -> bool | None:
        """``None`` without budgets, else whether every level's budgets held."""
        held = [level.budgets_held for level in self.levels]
        if all(h is None for h in held):
            return None
        return all(h is not False for h in held)

    @property
    def all_failed(self) -> bool:
        """Whether not one measured request succeeded (in any level)."""
        return all(level.summary.completed == 0 for level in self.levels)

    def to_doc(self, *, records: bool = True) -> RunDoc:
        """The JSON document: settings, each level's summary and (optionally) its records."""
        return RunDoc(
            tool=ToolDoc(name="gptoss-modal", version=__version__),
            started_at=self.started_at,
            finished_at=self.finished_at,
            settings=self.settings.to_doc(),
            fixed_output=self.fixed_output,
            template_tokens=self.template_tokens,
            budgets=None
            if self.budgets_section is None
            else BudgetsDoc(
                section=self.budgets_section,
                source=self.budgets_source,
                held=self.budgets_held,
                not_measured=self.budgets_not_measured,
            ),
            warnings=self.warnings,
            levels=[
                LevelEntryDoc(
                    summary=level.summary_doc(), requests=[r.to_doc() for r in level.records]
                )
                if records
                else LevelEntryDoc(summary=level.summary_doc())
                for level in self.levels
            ],
            vllm_version=msgspec.UNSET if self.vllm_version is None else self.vllm_version,
        )

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_doc` (with every record) to ``path``."""
        Path(path).write_bytes(encode_run(self.to_doc()) + b"\n")
