"""Read ``budgets.toml`` and check measurements against it (pure; tested offline).

A limit named ``min_<metric>`` is a lower bound on ``<metric>``; any other limit is an upper
bound on the measurement of the same name. A limit whose measurement is missing fails: a
budget that silently checks nothing is worse than none.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# What the e2e suite measures at level 1 (one stream), and across the run.
LEVEL_METRICS = ("ttft_p50_ms", "ttft_p95_ms", "tpot_p50_ms", "output_tokens_per_s")
RUN_METRICS = ("cold_start_s",)


class BudgetFileError(ValueError):
    """The budgets file is missing a GPU or has the wrong shape."""


@dataclass(frozen=True)
class Budget:
    """One GPU type's limits: cold start, and per concurrency level."""

    gpu: str
    source: str
    cold_start_s: float | None
    levels: dict[int, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """One limit checked against one measurement."""

    name: str
    limit: float
    measured: float | None
    ok: bool

    def line(self) -> str:
        bound = ">=" if self.name.startswith("min_") else "<="
        shown = "not measured" if self.measured is None else f"{self.measured:.4g}"
        mark = "ok  " if self.ok else "FAIL"
        return f"[{mark}] {self.name}: {shown} (budget {bound} {self.limit:g})"


def load_budget(path: Path, gpu: str) -> Budget:
    """The budget for a GPU spec such as ``B200:1`` (the type decides; the count does not)."""
    data = tomllib.loads(path.read_text())
    gpus = data.get("gpus")
    if not isinstance(gpus, dict):
        raise BudgetFileError(f"{path}: no [gpus.<TYPE>] tables")
    kind = gpu.partition(":")[0]
    table = gpus.get(kind)
    if not isinstance(table, dict):
        raise BudgetFileError(
            f"{path}: no budget for GPU {kind!r} (have {', '.join(sorted(gpus))}); add a "
            f"[gpus.{kind}] table or point GPTOSS_E2E_BUDGETS at your own file"
        )
    source = table.get("source")
    if not isinstance(source, str) or not source.strip():
        raise BudgetFileError(
            f"{path}: [gpus.{kind}] needs a `source` saying where its numbers come from"
        )
    levels: dict[int, dict[str, float]] = {}
    for level, limits in table.get("levels", {}).items():
        if not isinstance(limits, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in limits.values()
        ):
            raise BudgetFileError(f"{path}: [gpus.{kind}.levels.{level}] must hold numbers")
        levels[int(level)] = {name: float(value) for name, value in limits.items()}
    cold = table.get("cold_start_s")
    return Budget(kind, source.strip(), None if cold is None else float(cold), levels)


def check(limits: Mapping[str, float], measured: Mapping[str, float]) -> list[Verdict]:
    """Each limit against its measurement, in the limits' order."""
    verdicts = []
    for name, limit in limits.items():
        metric = name.removeprefix("min_")
        value = measured.get(metric)
        if value is None or math.isnan(value):
            verdicts.append(Verdict(name, limit, None, False))
        elif name.startswith("min_"):
            verdicts.append(Verdict(name, limit, value, value >= limit))
        else:
            verdicts.append(Verdict(name, limit, value, value <= limit))
    return verdicts


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
