"""The benchmark's terminal output and the comparison of two runs, from their JSON documents.

Everything here reads the JSON that :meth:`gptoss_modal.bench.run.BenchRun.to_json` writes, so a
table, a comparison or a plot can be made again from a saved file (``gptoss-modal bench
compare A.json B.json``). Pure: strings in, strings out.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.bench.stats import LATENCY_METRICS

__all__ = [
    "COMPARED",
    "Change",
    "compare_runs",
    "read_run",
    "render_budgets",
    "render_comparison",
    "render_run",
]

SCHEMA: Final = "gptoss-modal-bench/1"
# What a comparison shows: (label, path into a level summary, which direction is better).
COMPARED: Final[tuple[tuple[str, tuple[str, ...], Literal["higher", "lower"]], ...]] = (
    ("output tokens/s", ("output_tokens_per_s",), "higher"),
    ("requests/s", ("requests_per_s",), "higher"),
    ("goodput/s", ("goodput", "per_s"), "higher"),
    ("error rate", ("error_rate",), "lower"),
    *(
        (f"{metric} {stat} ms", ("latency_ms", metric, stat), "lower")
        for metric in ("ttft_chunk", "ttft", "ttft_content", "tpot", "itl", "e2e")
        for stat in ("p50", "p99")
    ),
    ("acceptance rate", ("spec_decode", "acceptance_rate"), "higher"),
    ("acceptance length", ("spec_decode", "acceptance_length"), "higher"),
)
SAME_WITHIN: Final = 0.01  # a relative change smaller than 1% is reported as "same"


def read_run(path: str | Path) -> dict[str, Any]:
    """A run's JSON document; :class:`ConfigError` when the file is not one."""
    where = str(path)
    allowed = "a JSON file written by gptoss-modal bench --json"
    try:
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise ConfigError(where, where, f"{allowed} ({exc.strerror})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(where, where, f"{allowed} (not JSON: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        found = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise ConfigError(f"{where}: schema", found, f"{allowed} (schema {SCHEMA})")
    levels = doc.get("levels")
    if not isinstance(levels, list) or not all(
        isinstance(level, dict) and isinstance(level.get("summary"), dict) for level in levels
    ):
        raise ConfigError(f"{where}: levels", levels, f"{allowed} (a list of level summaries)")
    return doc


def _get(summary: Mapping[str, Any], path: Sequence[str]) -> float | None:
    value: Any = summary
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _num(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "-"
    return f"{value:,.{digits}f}"


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


def render_run(doc: Mapping[str, Any]) -> str:
    """The run's tables: throughput per level, then each latency's distribution per level."""
    summaries = [level["summary"] for level in doc.get("levels", [])]
    out: list[str] = []
    settings = doc.get("settings", {})
    out.append(
        f"{settings.get('url')}  model {settings.get('model')}  "
        f"in {settings.get('input_tokens')} / out {settings.get('output_tokens')} tokens"
        f"{'' if doc.get('fixed_output', True) else ' (not fixed)'}  "
        f"reasoning {settings.get('reasoning_effort')}  seed {settings.get('seed')}"
    )
    out.append("")
    rows = []
    for s in summaries:
        spec = s.get("spec_decode") or {}
        goodput = s.get("goodput")
        rows.append(
            [
                s["level"]["label"],
                str(s["completed"]),
                str(s["failed"]),
                _num(s.get("output_tokens_per_s")),
                _num(s.get("requests_per_s"), 2),
                "-"
                if goodput is None
                else f"{_num(goodput['per_s'], 2)} ({goodput['fraction']:.0%})",
                _num(spec.get("acceptance_rate"), 3),
                _num(spec.get("acceptance_length"), 2),
                f"{s['client']['cpu_fraction']:.0%}"
                + (" !" if s["client"]["client_bound"] else ""),
            ]
        )
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
        rows,
    )
    out.append("")
    rows = []
    for s in summaries:
        label = s["level"]["label"]
        for metric in LATENCY_METRICS:
            dist = s["latency_ms"].get(metric)
            if dist is None and metric in ("queue", "ttft_content"):
                continue
            name = metric if metric != "itl" or s.get("itl_per_token", True) else "itl (chunk)"
            stats = [
                _num(dist.get(k) if dist else None) for k in ("mean", "p50", "p90", "p95", "p99")
            ]
            rows.append([label, name, *stats])
            label = ""
    out += _table(["level", "latency (ms)", "mean", "p50", "p90", "p95", "p99"], rows, left=2)
    errors = [(s["level"]["label"], s["errors"]) for s in summaries if s.get("errors")]
    if errors:
        out.append("")
        out.append("errors by kind:")
        out += [
            f"  {label}: " + ", ".join(f"{kind} x{count}" for kind, count in kinds.items())
            for label, kinds in errors
        ]
    budgets = render_budgets(doc)
    if budgets:
        out += ["", budgets]
    return "\n".join(out)


def render_budgets(doc: Mapping[str, Any]) -> str:
    """One line per budget check, and a verdict; empty when the run had no budgets."""
    info = doc.get("budgets")
    if not info:
        return ""
    out = [
        f"budgets [{info.get('section')}]" + (f" ({info['source']})" if info.get("source") else "")
    ]
    failed = total = 0
    for level in doc.get("levels", []):
        s = level["summary"]
        budgets = s.get("budgets")
        if not budgets:
            continue
        for check in budgets["checks"]:
            total += 1
            failed += not check["passed"]
            sign = "<=" if check["kind"] == "max" else ">="
            verdict = "PASS" if check["passed"] else "FAIL"
            measured = (
                _num(check["measured"], 3) if check["measured"] is not None else "not measured"
            )
            out.append(
                f"  {verdict}  {s['level']['label']:<14} {check['key']:<26} {measured} "
                f"(limit {sign} {check['limit']:g})"
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
    better: Literal["higher", "lower"]

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


def compare_runs(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[list[Change], list[str]]:
    """Every compared metric of every level the two runs share, and the levels only one has."""
    a_levels = {lv["summary"]["level"]["label"]: lv["summary"] for lv in a.get("levels", [])}
    b_levels = {lv["summary"]["level"]["label"]: lv["summary"] for lv in b.get("levels", [])}
    changes = [
        Change(label, name, _get(a_levels[label], path), _get(b_levels[label], path), better)
        for label in a_levels
        if label in b_levels
        for name, path, better in COMPARED
    ]
    unmatched = [f"{label} only in A" for label in a_levels if label not in b_levels]
    unmatched += [f"{label} only in B" for label in b_levels if label not in a_levels]
    return [c for c in changes if c.a is not None or c.b is not None], unmatched


def render_comparison(
    a: Mapping[str, Any], b: Mapping[str, Any], a_name: str = "A", b_name: str = "B"
) -> str:
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
        f"A = {a_name} ({a.get('started_at', '?')})",
        f"B = {b_name} ({b.get('started_at', '?')})",
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
