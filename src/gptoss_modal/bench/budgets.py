"""Latency budgets: a TOML file of limits per GPU section and per load level.

The benchmark (``gptoss-modal bench --budgets FILE --gpu B200``) and the e2e suite read the
same file. Its shape (``budgets.example.toml`` is a full example)::

    [B200]                      # a section, usually named after the GPU
    source = "where the numbers come from"
    cold_start_s = 1200         # optional, for the e2e suite: zero containers to healthy,
    warm_start_s = 300          # with empty caches (cold) or filled cache Volumes (warm)

    [B200.all]                  # limits for every level
    max_error_rate = 0.0

    [B200.concurrency.1]        # limits for the closed-loop level at concurrency 1
    ttft_p95_ms = 400
    tpot_p50_ms = 6.0
    min_output_tokens_per_s = 150

    [B200.rate."2.5"]           # limits for the open-loop level at 2.5 requests/s

    [B200.cold_starts.snapshot] # `bench cold-start` limits per start mode (plain, snapshot)
    healthy_p50_s = 90          # <metric>_<stat>_s: metric healthy, ttft or first_content;
    first_content_p90_s = 150   # stat p50, p90, p99 or max

A level's limits are ``all``, overridden by its ``concurrency`` table, overridden by its
``rate`` table. The keys are :data:`BUDGET_KEYS` (checked limits) and
:data:`SLO_KEYS` (per-request limits that define goodput); every table may
also carry a ``source`` string. Anything else raises :class:`ConfigError` naming the key's
full path and what is allowed.

:func:`evaluate_budgets` holds a level's limits against what it measured
(:func:`measured_values`): ``<metric>_<stat>_ms`` is an upper limit on a latency statistic,
``min_<quantity>`` a lower limit, ``max_error_rate`` an upper limit on the failed fraction,
``tool_call_invalid_rate`` an upper limit on the invalid share of tool calls (agentic runs; a
run without tool calls has not measured it, so it fails), and
``<metric>_ms`` a per-request limit that only defines goodput (it is not checked here).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.bench.cost import usd_per_mtok
from gptoss_modal.bench.stats import LATENCY_METRICS, SLO_METRICS, STATS, LevelSummary

__all__ = [
    "BUDGET_KEYS",
    "LOWER_LIMITS",
    "SLO_KEYS",
    "BudgetCheck",
    "Budgets",
    "BudgetsFile",
    "budget_kind",
    "evaluate_budgets",
    "evaluate_cold_starts",
    "load_budgets",
    "measured_values",
    "parse_budgets",
]

# Quantities a budget can ask to be at least some value (``min_<name>``).
LOWER_LIMITS: Final = (
    "output_tokens_per_s",
    "requests_per_s",
    "goodput_per_s",
    "goodput_fraction",
    "stream_tokens_per_s",
    "acceptance_rate",
    "acceptance_length",
)
SLO_KEYS: Final = frozenset(f"{m}_ms" for m in SLO_METRICS)
BUDGET_KEYS: Final = frozenset(
    [f"{m}_{s}_ms" for m in LATENCY_METRICS for s in STATS]
    + [f"min_{q}" for q in LOWER_LIMITS]
    + ["max_error_rate", "max_cost_per_mtok", "tool_call_invalid_rate"]
)

SECTION_KEYS: Final = (
    "source",
    "cold_start_s",
    "all",
    "concurrency",
    "rate",
    "warm_start_s",
    "cold_starts",
)
# Cold-start budgets, per start mode: <metric>_<stat>_s over a `bench cold-start` run.
START_MODES: Final = ("plain", "snapshot")
COLD_START_METRICS: Final = ("healthy", "ttft", "first_content")
COLD_START_STATS: Final = ("p50", "p90", "p99", "max")
COLD_START_KEYS: Final = frozenset(
    f"{m}_{s}_s" for m in COLD_START_METRICS for s in COLD_START_STATS
)
_START_KEYS: Final = ("cold_start_s", "warm_start_s")
_FRACTIONS: Final = frozenset(
    {"min_goodput_fraction", "min_acceptance_rate", "max_error_rate", "tool_call_invalid_rate"}
)
ALLOWED_LIMIT_KEYS: Final = (
    f"<metric>_<stat>_ms (metric: {', '.join(LATENCY_METRICS)}; stat: {', '.join(STATS)}), "
    f"<metric>_ms per request ({', '.join(sorted(k[:-3] for k in SLO_KEYS))}), "
    f"{', '.join(f'min_{q}' for q in LOWER_LIMITS)}, max_error_rate, max_cost_per_mtok "
    "(dollars per million output tokens, with --gpu), tool_call_invalid_rate (an upper "
    "limit on the invalid share of tool calls, agentic runs), or source"
)

_MS: Final = 1000.0

Limits = dict[str, float]


@dataclass(frozen=True)
class Budgets:
    """One section of a budgets file: its limits for every level and per level."""

    name: str
    source: str | None = None
    cold_start_s: float | None = None
    warm_start_s: float | None = None
    cold_starts: dict[str, Limits] = field(default_factory=dict)  # start mode -> limits (s)
    every: Limits = field(default_factory=dict)
    concurrency: dict[int, Limits] = field(default_factory=dict)
    rate: dict[float, Limits] = field(default_factory=dict)

    def for_level(self, concurrency: int | None, rate: float | None = None) -> Limits:
        """The limits of one level: ``all``, then its concurrency's, then its rate's."""
        limits = dict(self.every)
        if concurrency is not None:
            limits.update(self.concurrency.get(concurrency, {}))
        if rate is not None:
            limits.update(self.rate.get(rate, {}))
        return limits

    def not_measured(self, levels: Iterable[tuple[int | None, float | None]]) -> list[str]:
        """The level tables of this section that none of ``levels`` (``(concurrency, rate)``
        pairs) uses, as ``concurrency.4`` or ``rate.2.5``: reported, never silently skipped."""
        pairs = list(levels)
        used_c = {c for c, _ in pairs}
        used_r = {r for _, r in pairs}
        return [f"concurrency.{c}" for c in self.concurrency if c not in used_c] + [
            f"rate.{r:g}" for r in self.rate if r not in used_r
        ]


@dataclass(frozen=True)
class BudgetsFile:
    """A parsed budgets file: its sections by name."""

    path: str
    sections: dict[str, Budgets]

    def section(self, name: str | None) -> Budgets:
        """The section called ``name``; the only one when ``name`` is None and there is one."""
        if name is None:
            if len(self.sections) == 1:
                return next(iter(self.sections.values()))
            raise ConfigError(
                "--gpu",
                None,
                f"the budgets section to use, one of: {', '.join(self.sections) or '(none)'}",
                source=self.path,
            )
        if name not in self.sections:
            raise ConfigError(
                "--gpu", name, f"one of the sections in the file: {', '.join(self.sections)}"
            )
        return self.sections[name]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _limit(path: str, key: str, value: Any, source: str) -> float:
    if key not in BUDGET_KEYS and key not in SLO_KEYS:
        raise ConfigError(path, value, f"a budget key: {ALLOWED_LIMIT_KEYS}", source=source)
    if not _number(value) or not math.isfinite(value):
        raise ConfigError(path, value, "a finite number", source=source)
    number = float(value)
    if key in _FRACTIONS and not 0.0 <= number <= 1.0:
        raise ConfigError(path, value, "a fraction within [0, 1]", source=source)
    if key == "min_acceptance_length" and number < 1.0:
        raise ConfigError(
            path, value, "a mean acceptance length >= 1 (tokens per step)", source=source
        )
    if key.endswith("_ms") and number <= 0:
        raise ConfigError(path, value, "a positive number of milliseconds", source=source)
    if number < 0:
        raise ConfigError(path, value, "a number >= 0", source=source)
    return number


def _limits(path: str, table: Any, source: str) -> Limits:
    if not isinstance(table, dict):
        raise ConfigError(path, table, "a table of budget limits", source=source)
    limits: Limits = {}
    for key, value in table.items():
        if key == "source":
            if not isinstance(value, str):
                raise ConfigError(f"{path}.source", value, "a string", source=source)
            continue
        limits[key] = _limit(f"{path}.{key}", key, value, source)
    return limits


def _levels(path: str, table: Any, source: str, kind: str) -> dict[Any, Limits]:
    if not isinstance(table, dict):
        raise ConfigError(path, table, f"a table of levels by {kind}", source=source)
    levels: dict[Any, Limits] = {}
    for key, limits in table.items():
        level: float
        try:
            level = int(key) if kind == "concurrency" else float(key)
        except ValueError:
            level = math.nan
        if not math.isfinite(level) or level <= 0:
            allowed = (
                "a positive whole number of concurrent requests, e.g. [B200.concurrency.8]"
                if kind == "concurrency"
                else 'a positive request rate per second, e.g. [B200.rate."2.5"]'
            )
            raise ConfigError(f"{path}.{key}", key, allowed, source=source)
        levels[level] = _limits(f"{path}.{key}", limits, source)
    return levels


def _seconds(path: str, value: Any, source: str) -> float | None:
    """A start-up budget: absent, or a positive finite number of seconds."""
    if value is None:
        return None
    if not _number(value) or not math.isfinite(value) or value <= 0:
        raise ConfigError(path, value, "a positive number of seconds", source=source)
    return float(value)


_COLD_START_ALLOWED: Final = (
    f"<metric>_<stat>_s (metric: {', '.join(COLD_START_METRICS)}; "
    f"stat: {', '.join(COLD_START_STATS)})"
)


def _cold_starts(path: str, table: Any, source: str) -> dict[str, Limits]:
    """``[<GPU>.cold_starts.<mode>]`` tables: positive seconds under COLD_START_KEYS."""
    if not isinstance(table, dict):
        raise ConfigError(path, table, "a table of start modes", source=source)
    modes: dict[str, Limits] = {}
    for mode, limits in table.items():
        where = f"{path}.{mode}"
        if mode not in START_MODES or not isinstance(limits, dict):
            raise ConfigError(
                where, limits, f"a table for one of {', '.join(START_MODES)}", source=source
            )
        modes[mode] = {}
        for key, value in limits.items():
            if key == "source":
                continue
            if key not in COLD_START_KEYS:
                raise ConfigError(f"{where}.{key}", value, _COLD_START_ALLOWED, source=source)
            seconds = _seconds(f"{where}.{key}", value, source)
            assert seconds is not None
            modes[mode][key] = seconds
    return modes


def parse_budgets(data: Mapping[str, Any], source: str = "<budgets>") -> BudgetsFile:
    """Validate a decoded budgets TOML document; ``source`` names it in errors."""
    sections: dict[str, Budgets] = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(
                name, table, "a table of budgets for one GPU, e.g. [B200]", source=source
            )
        for key in table:
            if key not in SECTION_KEYS:
                raise ConfigError(
                    f"{name}.{key}", table[key], f"one of {', '.join(SECTION_KEYS)}", source=source
                )
        section_source = table.get("source")
        if section_source is not None and not isinstance(section_source, str):
            raise ConfigError(f"{name}.source", section_source, "a string", source=source)
        starts = {key: _seconds(f"{name}.{key}", table.get(key), source) for key in _START_KEYS}
        sections[name] = Budgets(
            name=name,
            source=section_source,
            **starts,
            cold_starts=_cold_starts(f"{name}.cold_starts", table.get("cold_starts", {}), source),
            every=_limits(f"{name}.all", table.get("all", {}), source),
            concurrency=_levels(
                f"{name}.concurrency", table.get("concurrency", {}), source, "concurrency"
            ),
            rate=_levels(f"{name}.rate", table.get("rate", {}), source, "rate"),
        )
    if not sections:
        raise ConfigError("budgets", source, "a file with at least one section, e.g. [B200]")
    return BudgetsFile(path=source, sections=sections)


def load_budgets(path: str | Path) -> BudgetsFile:
    """Read and validate a budgets TOML file (:class:`ConfigError` for anything wrong)."""
    where = str(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError("--budgets", where, f"a readable TOML file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("--budgets", where, f"valid TOML ({exc})") from exc
    return parse_budgets(data, where)


# --- checks -----------------------------------------------------------------------------------


def measured_values(
    summary: LevelSummary,
    *,
    acceptance_rate: float | None = None,
    acceptance_length: float | None = None,
    usd_per_s: float | None = None,
    tool_call_invalid_rate: float | None = None,
) -> dict[str, float | None]:
    """Every quantity a budget can name, as measured (``None`` where nothing was measured).

    Latency statistics are in milliseconds under ``<metric>_<stat>_ms``; the lower-limit
    quantities under their own names; the failed fraction as ``error_rate``; with the GPUs'
    price (``usd_per_s``), dollars per million output tokens as ``cost_per_mtok``; the invalid
    share of tool calls as ``tool_call_invalid_rate`` (``None``: no calls were checked).
    """
    values: dict[str, float | None] = {}
    for metric in LATENCY_METRICS:
        dist = summary.latency.get(metric)
        for stat in STATS:
            values[f"{metric}_{stat}_ms"] = None if dist is None else dist.stat(stat) * _MS
    values["output_tokens_per_s"] = summary.output_tokens_per_s if summary.completed else None
    values["requests_per_s"] = summary.requests_per_s if summary.completed else None
    values["goodput_per_s"] = summary.goodput_per_s
    values["goodput_fraction"] = summary.goodput_fraction
    stream = summary.stream_tokens_per_s
    values["stream_tokens_per_s"] = None if stream is None else stream.p50
    values["acceptance_rate"] = acceptance_rate
    values["acceptance_length"] = acceptance_length
    values["error_rate"] = summary.error_rate if summary.requests else None
    values["tool_call_invalid_rate"] = tool_call_invalid_rate
    values["cost_per_mtok"] = (
        None
        if usd_per_s is None or not summary.completed
        else usd_per_mtok(usd_per_s, summary.output_tokens_per_s)
    )
    return values


def budget_kind(key: str) -> tuple[str, Literal["max", "min"]]:
    """The measured quantity a budget key limits, and whether it is an upper or lower limit.

    Raises ``KeyError`` for a key that is not a budget (see :data:`BUDGET_KEYS`).
    """
    if key not in BUDGET_KEYS:
        raise KeyError(key)
    if key.startswith("min_"):
        return key[4:], "min"
    if key.startswith("max_"):
        return key[4:], "max"
    return key, "max"


@dataclass(frozen=True, slots=True)
class BudgetCheck:
    """One budget held against what was measured (``measured`` None: nothing to measure)."""

    key: str
    limit: float
    measured: float | None
    kind: Literal["max", "min"]

    @property
    def passed(self) -> bool:
        """Measured and on the right side of the limit (equal to it passes)."""
        if self.measured is None or math.isnan(self.measured):
            return False
        return self.measured <= self.limit if self.kind == "max" else self.measured >= self.limit


def evaluate_budgets(
    limits: Mapping[str, float], measured: Mapping[str, float | None]
) -> list[BudgetCheck]:
    """Each budget in ``limits`` checked against ``measured`` (:func:`measured_values`).

    Per-request limits (``<metric>_ms``) define goodput and are not checked here. A budget on
    something that was not measured (no successful request, no spec-decode counters) fails.
    """
    checks: list[BudgetCheck] = []
    for key, limit in limits.items():
        if key in SLO_KEYS:
            continue
        quantity, kind = budget_kind(key)
        checks.append(BudgetCheck(key, limit, measured.get(quantity), kind))
    return checks


def evaluate_cold_starts(
    budgets: Budgets, start_mode: str, summary: Mapping[str, Mapping[str, float]]
) -> list[BudgetCheck]:
    """The cold-start budgets of ``start_mode`` held against a ``bench cold-start`` summary
    (``ColdStartRun.summary()``: ``{"healthy_s": {"p50": ...}, ...}``); all upper limits, and
    one on something not measured fails."""
    checks: list[BudgetCheck] = []
    for key, limit in budgets.cold_starts.get(start_mode, {}).items():
        metric, stat = key.removesuffix("_s").rsplit("_", 1)
        measured = summary.get(f"{metric}_s", {}).get(stat)
        checks.append(BudgetCheck(key, limit, measured, "max"))
    return checks
