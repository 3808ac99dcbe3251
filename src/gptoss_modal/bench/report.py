"""The benchmark's terminal output and the comparison of two runs, from their JSON documents.

Everything here reads the typed document of :mod:`gptoss_modal.bench.schema` (what
:meth:`gptoss_modal.bench.results.BenchRun.to_doc` makes and ``--json`` writes), so a table, a
comparison or a plot can be made again from a saved file (``gptoss-modal bench compare A.json
B.json``, read by :func:`gptoss_modal.bench.schema.read_run`). Pure: documents in, strings out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from gptoss_modal.bench.schema import RunDoc, SummaryDoc
from gptoss_modal.bench.stats import LATENCY_METRICS

__all__ = [
    "COMPARED",
    "Change",
    "compare_runs",
    "render_agentic",
    "render_budgets",
    "render_comparison",
    "render_cost",
    "render_run",
]

Better = Literal["higher", "lower"]
Measure = Callable[[SummaryDoc], float | None]


def _latency(metric: str, stat: str) -> Measure:
    def measure(s: SummaryDoc) -> float | None:
        dist = s.latency_ms.get(metric)
        return None if dist is None else dist.stat(stat)

    return measure


def _goodput_per_s(s: SummaryDoc) -> float | None:
    return None if s.goodput is None else s.goodput.per_s


def _acceptance_rate(s: SummaryDoc) -> float | None:
    return None if s.spec_decode is None else s.spec_decode.acceptance_rate


def _acceptance_length(s: SummaryDoc) -> float | None:
    return None if s.spec_decode is None else s.spec_decode.acceptance_length


# What a comparison shows: (label, how to read it from a level summary, which way is better).
COMPARED: Final[tuple[tuple[str, Measure, Better], ...]] = (
    ("output tokens/s", lambda s: s.output_tokens_per_s, "higher"),
    ("requests/s", lambda s: s.requests_per_s, "higher"),
    ("goodput/s", _goodput_per_s, "higher"),
    ("error rate", lambda s: s.error_rate, "lower"),
    *(
        (f"{metric} {stat} ms", _latency(metric, stat), "lower")
        for metric in ("ttft_chunk", "ttft", "ttft_content", "tpot", "itl", "e2e")
        for stat in ("p50", "p99")
    ),
    ("acceptance rate", _acceptance_rate, "higher"),
    ("acceptance length", _acceptance_length, "higher"),
    ("$/M output tokens", lambda s: s.cost.usd_per_mtok_output if s.cost else None, "lower"),
)
SAME_WITHIN: Final = 0.01  # a relative change smaller than 1% is reported as "same"


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Columns sized to fit; the first ``left`` columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i < left else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _header(doc: RunDoc) -> str:
    settings = doc.settings
    return (
        f"{settings.url}  model {settings.model}  "
        + (
            f"out {settings.output_tokens} tokens"
            if settings.scenario == "agentic"  # prompts are the conversations' history
            else f"in {settings.input_tokens} / out {settings.output_tokens} tokens"
        )
        + f"{'' if doc.fixed_output else ' (not fixed)'}  "
        f"reasoning {settings.reasoning_effort}  seed {settings.seed}" + _workload(doc)
    )


def _workload(doc: RunDoc) -> str:
    """The scenario, API, sessions and server version, where they are not the defaults."""
    s = doc.settings
    parts = []
    if s.scenario != "chat":
        parts.append(f"{s.scenario} ({s.turns} turns, tool_choice {s.tool_choice})")
    if s.api != "chat":
        parts.append(f"api {s.api}")
    if s.session_ids:
        parts.append("Modal-Session-ID on")
    if doc.vllm_version:
        parts.append(f"vLLM {doc.vllm_version}")
    return "".join(f"\n{' ' * 2}{p}" if i == 0 else f"  {p}" for i, p in enumerate(parts))


def _throughput_row(s: SummaryDoc) -> list[str]:
    spec = s.spec_decode
    goodput = s.goodput
    return [
        s.level.label,
        str(s.completed),
        str(s.failed),
        _num(s.output_tokens_per_s),
        _num(s.requests_per_s, 2),
        "-" if goodput is None else f"{_num(goodput.per_s, 2)} ({_percent(goodput.fraction)})",
        _num(spec.acceptance_rate if spec else None, 3),
        _num(spec.acceptance_length if spec else None, 2),
        f"{s.client.cpu_fraction:.0%}" + (" !" if s.client.client_bound else ""),
    ]


def _latency_rows(s: SummaryDoc) -> list[list[str]]:
    rows = []
    label = s.level.label
    for metric in LATENCY_METRICS:
        dist = s.latency_ms.get(metric)
        if dist is None and metric in ("queue", "ttft_content"):
            continue
        name = metric if metric != "itl" or s.itl_per_token else "itl (chunk)"
        stats = [_num(dist.stat(k) if dist else None) for k in ("mean", "p50", "p90", "p95", "p99")]
        rows.append([label, name, *stats])
        label = ""
    return rows


def render_run(doc: RunDoc) -> str:
    """The run's tables: throughput per level, then each latency's distribution per level."""
    summaries = [level.summary for level in doc.levels]
    out = [_header(doc), ""]
    out += _table(
        [
            "level",
            "ok",
            "failed",
            "out tok/s",
            "req/s",
            "goodput/s",
            "accept",
            "accept len",
            "client CPU",
        ],
        [_throughput_row(s) for s in summaries],
    )
    out.append("")
    rows = [row for s in summaries for row in _latency_rows(s)]
    out += _table(["level", "latency (ms)", "mean", "p50", "p90", "p95", "p99"], rows, left=2)
    errors = [(s.level.label, s.errors) for s in summaries if s.errors]
    if errors:
        out.append("")
        out.append("errors by kind:")
        out += [
            f"  {label}: " + ", ".join(f"{kind} x{count}" for kind, count in kinds.items())
            for label, kinds in errors
        ]
    agentic = render_agentic(doc)
    if agentic:
        out += ["", agentic]
    cost = render_cost(doc)
    if cost:
        out += ["", cost]
    budgets = render_budgets(doc)
    if budgets:
        out += ["", budgets]
    return "\n".join(out)


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _tool_rows(doc: RunDoc) -> list[list[str]]:
    rows = []
    for level in doc.levels:
        s = level.summary
        calls, cache = s.tool_calls, s.cache
        if calls is None and cache is None:
            continue
        interval = (
            "-"
            if calls is None or calls.wilson_low is None or calls.wilson_high is None
            else f"{calls.wilson_low:.1%}..{calls.wilson_high:.1%}"
        )
        rows.append(
            [
                s.level.label,
                "-" if calls is None else str(calls.calls),
                "-" if calls is None else str(calls.invalid),
                _rate(calls.invalid_rate if calls else None),
                _rate(calls.standard_error if calls else None),
                interval,
                _rate(cache.hit_share if cache else None),
                "-"
                if calls is None or not calls.problems
                else ", ".join(f"{k} x{n}" for k, n in calls.problems.items()),
            ]
        )
    return rows


def _turn_rows(doc: RunDoc) -> list[list[str]]:
    rows = []
    for level in doc.levels:
        label = level.summary.level.label
        for t in level.summary.turns:
            rows.append(
                [
                    label,
                    str(t.turn),
                    str(t.requests),
                    _num(t.prompt_tokens_mean, 0),
                    _num(t.cached_tokens_mean, 0),
                    _rate(t.cache_hit_share),
                    _num(t.ttft_p50_ms),
                    _num(t.tpot_p50_ms, 2),
                    _num(t.e2e_p50_ms),
                ]
            )
            label = ""
    return rows


def render_agentic(doc: RunDoc) -> str:
    """Tool-call validity and cache share per level, then each turn's prompt size and
    latencies; empty for a run without tools or turns."""
    out: list[str] = []
    rows = _tool_rows(doc)
    if rows:
        out += _table(
            [
                "level",
                "tool calls",
                "invalid",
                "rate",
                "std err",
                "95% Wilson",
                "cache hit",
                "problems",
            ],
            rows,
        )
        tallies = [lv.summary.tool_calls for lv in doc.levels if lv.summary.tool_calls]
        invalid = sum(tally.invalid for tally in tallies)
        if invalid:
            out.append(f"INVALID TOOL CALLS: {invalid} (see problems)")
        elif any(tally.calls for tally in tallies):
            out.append("tool calls: all valid")
        else:  # only the cache share was measured: "all valid" would claim calls were checked
            out.append("tool calls: none made")
    turns = _turn_rows(doc)
    if turns:
        out.append("")
        header = ["level", "turn", "requests", "prompt tok", "cached tok", "cache hit"]
        header += ["ttft p50", "tpot p50", "e2e p50"]
        out += _table(header, turns, left=1)
    return "\n".join(out).strip("\n")


def _dollars(value: float | None) -> str:
    return "-" if value is None else f"${value:,.3f}"


def render_cost(doc: RunDoc) -> str:
    """The cost table (dollars per million tokens per level) and where the price came from;
    empty when the run was not priced (no ``--gpu``)."""
    gpu = doc.settings.gpu
    if gpu is None:
        return ""
    compare = gpu.compare_usd_per_mtok
    header = ["level", "out tok/s", "$/M out", "total tok/s", "$/M total"]
    if compare is not None:
        header.append(f"vs ${compare:g}/M")
    rows = []
    for level in doc.levels:
        s = level.summary
        cost = s.cost
        row = [
            s.level.label,
            _num(s.output_tokens_per_s),
            _dollars(cost.usd_per_mtok_output if cost else None),
            _num(cost.total_tokens_per_s if cost else None),
            _dollars(cost.usd_per_mtok_total if cost else None),
        ]
        if compare is not None:
            ratio = cost.vs_compare if cost else None
            row.append("-" if ratio is None else f"{ratio:.2f}x")
        rows.append(row)
    out = [
        f"cost: {gpu.count} x {gpu.name} at ${gpu.usd_per_gpu_s:g}/GPU-s "
        f"(${gpu.usd_per_s * 3600:,.2f}/h) from {gpu.source}: {gpu.detail}",
        *_table(header, rows),
    ]
    if gpu.break_even_output_tokens_per_s is not None:
        out.append(
            f"break-even with ${compare:g}/M output tokens: "
            f"{gpu.break_even_output_tokens_per_s:,.0f} output tok/s sustained"
        )
    return "\n".join(out)


def render_budgets(doc: RunDoc) -> str:
    """One line per budget check, and a verdict; empty when the run had no budgets."""
    info = doc.budgets
    if not info:
        return ""
    out = [f"budgets [{info.section}]" + (f" ({info.source})" if info.source else "")]
    failed = total = 0
    for level in doc.levels:
        s = level.summary
        if not s.budgets:
            continue
        for check in s.budgets.checks:
            total += 1
            failed += not check.passed
            sign = "<=" if check.kind == "max" else ">="
            verdict = "PASS" if check.passed else "FAIL"
            measured = _num(check.measured, 3) if check.measured is not None else "not measured"
            out.append(
                f"  {verdict}  {s.level.label:<14} {check.key:<26} {measured} "
                f"(limit {sign} {check.limit:g})"
            )
    out.extend(
        f"  not measured  [{info.section}.{table}]: the run has no such level"
        for table in info.not_measured
    )
    if total == 0:
        out.append("  no budget applies to these levels")
    else:
        out.append(
            f"budgets held: {total - failed}/{total} passed"
            if not failed
            else f"budgets FAILED: {failed} of {total} checks"
        )
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class Change:
    """One metric of one level in two runs, and the relative change from A to B."""

    level: str
    metric: str
    a: float | None
    b: float | None
    better: Better

    @property
    def relative(self) -> float | None:
        """(B - A) / |A|; ``None`` when either is missing or A is zero."""
        if self.a is None or self.b is None or self.a == 0:
            return None
        return (self.b - self.a) / abs(self.a)

    @property
    def verdict(self) -> str:
        """``better``, ``worse``, ``same`` (within 1%), or ``-`` when not comparable."""
        change = self.relative
        if change is None:
            if self.a == self.b:
                return "same" if self.a is not None else "-"
            return "-"
        if abs(change) < SAME_WITHIN:
            return "same"
        improved = change > 0 if self.better == "higher" else change < 0
        return "better" if improved else "worse"


def compare_runs(a: RunDoc, b: RunDoc) -> tuple[list[Change], list[str]]:
    """Every compared metric of every level the two runs share, and the levels only one has."""
    a_levels = {lv.summary.level.label: lv.summary for lv in a.levels}
    b_levels = {lv.summary.level.label: lv.summary for lv in b.levels}
    changes = [
        Change(label, name, measure(a_levels[label]), measure(b_levels[label]), better)
        for label in a_levels
        if label in b_levels
        for name, measure, better in COMPARED
    ]
    unmatched = [f"{label} only in A" for label in a_levels if label not in b_levels]
    unmatched += [f"{label} only in B" for label in b_levels if label not in a_levels]
    return [c for c in changes if c.a is not None or c.b is not None], unmatched


def render_comparison(a: RunDoc, b: RunDoc, a_name: str = "A", b_name: str = "B") -> str:
    """The change of each metric from run A to run B, per level."""
    changes, unmatched = compare_runs(a, b)
    rows = []
    previous = None
    for change in changes:
        relative = change.relative
        rows.append(
            [
                change.level if change.level != previous else "",
                change.metric,
                _num(change.a, 2),
                _num(change.b, 2),
                "-" if relative is None else f"{relative:+.1%}",
                change.verdict,
            ]
        )
        previous = change.level
    out = [
        f"A = {a_name} ({a.started_at or '?'})",
        f"B = {b_name} ({b.started_at or '?'})",
        "",
    ]
    out += _table(["level", "metric", "A", "B", "change", ""], rows, left=2)
    if unmatched:
        out += ["", "not compared: " + ", ".join(unmatched)]
    worse = sum(1 for c in changes if c.verdict == "worse")
    better = sum(1 for c in changes if c.verdict == "better")
    out += [
        "",
        f"{better} better, {worse} worse, {len(changes) - better - worse} same or not comparable",
    ]
    return "\n".join(out)
