"""Where a run is, for whoever shows it: the :class:`Progress` a run reports to, and a silent one.

The terminal's bar is :class:`gptoss_modal.display.TerminalProgress` (the display the CLI and
the Modal app share); tests record the calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gptoss_modal.bench.settings import Level

__all__ = ["LiveStats", "Progress", "SilentProgress"]


@dataclass(frozen=True, slots=True)
class LiveStats:
    """Where a level is: requests done and failed, in flight, seconds, live output tokens/s,
    and the output tokens received so far against those the level will ask for (``None``: a
    level that runs for a duration), so a bar moves with every token, not every request."""

    level: Level
    done: int
    errors: int
    in_flight: int
    elapsed_s: float
    tokens_per_s: float
    total: int | None
    duration_s: float | None
    tokens: int = 0
    expected_tokens: int | None = None


class Progress(Protocol):
    """Receives the run's progress (the CLI draws a bar; tests record the calls)."""

    def note(self, message: str) -> None:
        """A line to show (a level's warning)."""

    def warmup_started(self, level: Level, requests: int) -> None:
        """A level's uncounted warm-up of ``requests`` short requests begins."""

    def level_started(self, level: Level, total: int | None, duration_s: float | None) -> None:
        """A level begins: ``total`` requests, or for ``duration_s`` seconds."""

    def update(self, live: LiveStats) -> None:
        """The running level's counters, a few times a second."""

    def level_finished(self, live: LiveStats) -> None:
        """The level's last counters."""


class SilentProgress:
    """Progress that shows nothing (``--quiet``, benchmarks, tests)."""

    def note(self, message: str) -> None:
        """Shows nothing."""

    def warmup_started(self, level: Level, requests: int) -> None:
        """Shows nothing."""

    def level_started(self, level: Level, total: int | None, duration_s: float | None) -> None:
        """Shows nothing."""

    def update(self, live: LiveStats) -> None:
        """Shows nothing."""

    def level_finished(self, live: LiveStats) -> None:
        """Shows nothing."""
