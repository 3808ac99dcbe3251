"""What a benchmark run is asked to do: its load levels, durations and the settings of a run.

Everything here is parsed from flags and checked at once, so a bad value fails before a long
run with a :class:`ConfigError` naming the flag.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from gptoss_modal._duration import parse_duration
from gptoss_modal._exceptions import ConfigError
from gptoss_modal.bench.cost import GpuPrice, gpu_doc
from gptoss_modal.bench.schema import LevelDoc, SettingsDoc

__all__ = [
    "APIS",
    "DEFAULT_REQUESTS_PER_SLOT",
    "DEFAULT_TURNS",
    "MIN_DEFAULT_REQUESTS",
    "SCENARIOS",
    "TOOL_CHOICES",
    "BenchSettings",
    "Level",
    "Messages",
    "parse_duration",
    "parse_levels",
]

DEFAULT_REQUESTS_PER_SLOT: Final = 4  # requests per level = 4 x concurrency (at least 8)...
MIN_DEFAULT_REQUESTS: Final = 8
DEFAULT_TURNS: Final = 4  # turns (requests) per agentic conversation
SCENARIOS: Final = ("chat", "agentic")
APIS: Final = ("chat", "responses")
TOOL_CHOICES: Final = ("auto", "named")

_Number = TypeVar("_Number", int, float)


@dataclass(frozen=True)
class Level:
    """One load level: ``concurrency`` requests at once (closed loop), or Poisson arrivals at
    ``rate`` requests/s (open loop) with at most ``concurrency`` in flight (``None``: no cap)."""

    concurrency: int | None
    rate: float | None = None

    @property
    def label(self) -> str:
        """``c=8``, ``rate=2.5/s`` or ``rate=2.5/s c<=64``."""
        if self.rate is None:
            return f"c={self.concurrency}"
        cap = f" c<={self.concurrency}" if self.concurrency is not None else ""
        return f"rate={self.rate:g}/s{cap}"

    @property
    def slots(self) -> int:
        """How many requests may be in flight (for warm-up and the connection pool)."""
        if self.concurrency is not None:
            return self.concurrency
        return max(1, math.ceil(self.rate or 1.0))

    def to_doc(self) -> LevelDoc:
        """The level as recorded in the JSON output."""
        return LevelDoc(label=self.label, concurrency=self.concurrency, rate=self.rate)


def _positive_list(text: str, field_name: str, kind: type[_Number]) -> list[_Number]:
    what = "whole numbers, e.g. 1,8,32" if kind is int else "numbers, e.g. 0.5,2,8"
    values: list[_Number] = []
    for part in text.split(","):
        try:
            value: _Number | None = kind(part.strip())
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value <= 0:
            raise ConfigError(field_name, text, f"comma-separated positive {what}")
        values.append(value)
    return values


def parse_levels(concurrency: str | None, rate: str | None) -> tuple[Level, ...]:
    """Levels from ``--concurrency 1,8,32`` and ``--rate R[,R...]``.

    Without ``--rate`` each concurrency is a closed-loop level (default 1,8,32). With it, each
    rate is an open-loop level capped by the concurrency (no cap when not given); only one of
    the two may list several values.
    """
    if rate is None:
        return tuple(
            Level(c) for c in _positive_list(concurrency or "1,8,32", "--concurrency", int)
        )
    rates = _positive_list(rate, "--rate", float)
    caps: list[int | None] = (
        list(_positive_list(concurrency, "--concurrency", int)) if concurrency else [None]
    )
    if len(rates) > 1 and len(caps) > 1:
        raise ConfigError(
            "--concurrency",
            concurrency,
            "a single cap when --rate lists several rates (levels vary one thing at a time)",
        )
    return tuple(Level(c, r) for c in caps for r in rates)


Messages = tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class BenchSettings:
    """Everything a run needs. ``requests`` and ``duration_s`` are per level (neither: 4 per
    slot, at least 8). ``prompts`` are chat conversations (from a JSONL file); without them
    synthetic prompts of ``input_tokens`` are made from ``seed``. ``warmup`` is the number of
    uncounted requests before each level (``None``: one per slot). ``price`` (the GPUs'
    price, :mod:`gptoss_modal.bench.cost`) turns each level's throughput into dollars per
    million tokens, and ``compare_usd_per_mtok`` is a hosted price to hold it against."""

    url: str
    model: str | None = "llm"
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    levels: tuple[Level, ...] = (Level(1), Level(8), Level(32))
    requests: int | None = None
    duration_s: float | None = None
    input_tokens: int = 1024
    output_tokens: int = 1024
    fixed_output: bool = True
    reasoning_effort: str | None = "low"
    prompts: tuple[Messages, ...] | None = None
    prompts_source: str | None = None
    seed: int = 0
    warmup: int | None = None
    health_timeout_s: float = 20 * 60.0
    stall_timeout_s: float | None = 120.0
    connect_timeout_s: float | None = 10.0
    scrape_metrics: bool = True
    # Cost and datasets (issue 14).
    price: GpuPrice | None = None
    compare_usd_per_mtok: float | None = None
    dataset: str | None = None  # the prompts file's format: "jsonl" or "sharegpt"
    # Scenarios and APIs (issues 13 and 14): the agentic workload's turns per conversation,
    # its user turns' tool choice, and one Modal-Session-ID per virtual user (None: on for
    # agentic runs, off for chat).
    scenario: str = "chat"
    api: str = "chat"
    turns: int = DEFAULT_TURNS
    tool_choice: str = "auto"
    session_ids: bool | None = None

    def __post_init__(self) -> None:
        if not self.levels:
            raise ConfigError("--concurrency", "", "at least one level")
        if self.requests is not None and self.duration_s is not None:
            raise ConfigError("--requests", self.requests, "either --requests or --duration")
        checks: list[tuple[str, float | None, bool]] = [
            ("--requests", self.requests, self.requests is None or self.requests >= 1),
            ("--duration", self.duration_s, self.duration_s is None or self.duration_s > 0),
            ("--input-tokens", self.input_tokens, self.input_tokens >= 1),
            ("--output-tokens", self.output_tokens, self.output_tokens >= 1),
            ("--warmup", self.warmup, self.warmup is None or self.warmup >= 0),
        ]
        for name, value, ok in checks:
            if not ok:
                raise ConfigError(
                    name, value, "a positive number" if name != "--warmup" else ">= 0"
                )
        if self.reasoning_effort not in (None, "low", "medium", "high"):
            raise ConfigError("--reasoning-effort", self.reasoning_effort, "low, medium or high")
        if self.prompts is not None and not self.prompts:
            raise ConfigError("--prompts", self.prompts_source, "a file with at least one prompt")
        self._check_scenario()
        if self.compare_usd_per_mtok is not None and self.price is None:
            raise ConfigError(
                "--compare-price",
                self.compare_usd_per_mtok,
                "--gpu",
                message="--compare-price needs the GPU's price: give --gpu (e.g. B200)",
            )

    def _check_scenario(self) -> None:
        for name, value, allowed in (
            ("--scenario", self.scenario, SCENARIOS),
            ("--api", self.api, APIS),
            ("--tool-choice", self.tool_choice, TOOL_CHOICES),
        ):
            if value not in allowed:
                raise ConfigError(name, value, " or ".join(allowed))
        if self.turns < 1:
            raise ConfigError("--turns", self.turns, "a positive number of turns")
        if self.scenario == "agentic" and any(level.rate is not None for level in self.levels):
            raise ConfigError(
                "--rate",
                ",".join(f"{level.rate:g}" for level in self.levels if level.rate is not None),
                "no --rate with --scenario agentic (its levels are --concurrency virtual users)",
            )
        if self.scenario == "agentic" and self.prompts is not None:
            raise ConfigError(
                "--prompts", self.prompts_source, "no --prompts with --scenario agentic"
            )

    @property
    def agentic(self) -> bool:
        """Whether each virtual user runs multi-turn tool-calling conversations."""
        return self.scenario == "agentic"

    @property
    def sends_session_ids(self) -> bool:
        """Whether each virtual user sends its own ``Modal-Session-ID``."""
        return self.session_ids if self.session_ids is not None else self.agentic

    def requests_for(self, level: Level) -> int | None:
        """How many measured requests a level sends (``None``: as many as fit the duration);
        an agentic level's default is one conversation of ``turns`` per virtual user."""
        if self.duration_s is not None:
            return None
        if self.requests is not None:
            return self.requests
        if self.agentic:
            return level.slots * self.turns
        return max(MIN_DEFAULT_REQUESTS, DEFAULT_REQUESTS_PER_SLOT * level.slots)

    def to_doc(self) -> SettingsDoc:
        """The settings as recorded in the JSON output (never the API key or headers)."""
        return SettingsDoc(
            url=self.url,
            model=self.model,
            levels=[level.to_doc() for level in self.levels],
            requests=self.requests,
            duration_s=self.duration_s,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            fixed_output=self.fixed_output,
            reasoning_effort=self.reasoning_effort,
            prompts=self.prompts_source,
            seed=self.seed,
            warmup=self.warmup,
            api_key="set" if self.api_key else None,
            gpu=None if self.price is None else gpu_doc(self.price, self.compare_usd_per_mtok),
            dataset=self.dataset,
            scenario=self.scenario,
            api=self.api,
            turns=self.turns if self.agentic else None,
            tool_choice=self.tool_choice if self.agentic else None,
            session_ids=self.sends_session_ids,
        )
