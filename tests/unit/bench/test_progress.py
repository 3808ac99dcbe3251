"""The benchmark's progress: the terminal's line (gptoss_modal.display) and the silent one."""

from __future__ import annotations

import io

from gptoss_modal.bench.progress import LiveStats, Progress, SilentProgress
from gptoss_modal.bench.settings import Level
from gptoss_modal.display import TerminalProgress


def live(done: int, total: int | None = 10) -> LiveStats:
    return LiveStats(Level(8), done, 1, 3, 65.0, 1234.0, total, None)


def test_progress_off_a_terminal_prints_one_line_per_level() -> None:
    """Without a TTY only the finished level's line is written (no carriage returns)."""
    out = io.StringIO()
    bar = TerminalProgress(out, tty=False)
    bar.level_started(Level(8), 10, None)
    bar.update(live(5))
    bar.level_finished(live(10))
    text = out.getvalue()
    assert text.count("\n") == 1
    assert "\r" not in text
    assert "10/10 req" in text
    assert "1 err" in text
    assert "1,234 tok/s" in text
    assert "01:05" in text


def test_progress_on_a_terminal_redraws_in_place() -> None:
    """On a TTY each update rewrites the same line."""
    out = io.StringIO()
    bar = TerminalProgress(out, tty=True)
    bar.update(live(5))
    bar.update(live(6))
    assert out.getvalue().count("\r") == 2
    assert "\n" not in out.getvalue()
    assert "[############............]" in out.getvalue()


def test_both_progress_kinds_are_progress() -> None:
    """The terminal's and the silent progress satisfy the Progress protocol (mypy-checked)."""
    out = io.StringIO()
    sinks: list[Progress] = [TerminalProgress(out, tty=False), SilentProgress()]
    for sink in sinks:
        sink.level_started(Level(1), None, 5.0)
        sink.note("x")
    assert out.getvalue() == "x\n"
