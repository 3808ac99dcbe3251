"""The benchmark's progress: the terminal's display (gptoss_modal.display) and the silent one."""

from __future__ import annotations

import io
import re

import pytest

from gptoss_modal.bench.progress import LiveStats, Progress, SilentProgress
from gptoss_modal.bench.settings import Level
from gptoss_modal.display import TerminalProgress, colour_wanted
from gptoss_modal.stream.client import HealthProgress

# An SGR sequence that sets a colour: 30-37, 90-97 (foreground), 40-47, 100-107, 38;.. / 48;..
_COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-9]|4[0-9]|9[0-7]|10[0-7])(?:;[0-9;]*)?m")


def live(done: int, total: int | None = 10, tokens: int = 0) -> LiveStats:
    return LiveStats(Level(8), done, 1, 3, 65.0, 1234.0, total, None, tokens, 1000)


class TtyBuffer(io.StringIO):
    """A buffer that says it is a terminal, as a user's stderr does."""

    def isatty(self) -> bool:
        return True


def test_progress_off_a_terminal_prints_one_line_per_level() -> None:
    """Without a TTY only the finished level's line is written, with no escape codes."""
    out = io.StringIO()
    bar = TerminalProgress(out, tty=False)
    bar.level_started(Level(8), 10, None)
    bar.update(live(5))
    bar.level_finished(live(10))
    text = out.getvalue()
    assert text.count("\n") == 1
    assert "\x1b" not in text
    assert "\r" not in text
    assert "10/10 req" in text
    assert "1 err" in text
    assert "1,234 tok/s" in text
    assert "01:05" in text


def test_off_a_terminal_the_warm_up_and_the_wait_are_plain_lines() -> None:
    """The warm-up marker and the health wait are lines saying what and how long, no codes."""
    out = io.StringIO()
    with TerminalProgress(out, tty=False) as bar:
        show = bar.health_callback("http://h:1", 1200.0)
        show(HealthProgress(0.1, 1, "connection refused", healthy=False))
        show(HealthProgress(9.0, 2, "HTTP 503", healthy=False))
        show(HealthProgress(12.0, 3, "HTTP 200", healthy=True))
        bar.warmup_started(Level(8), 8)
    lines = out.getvalue().splitlines()
    assert "\x1b" not in out.getvalue()
    assert lines[0].startswith("waiting up to 20 min for http://h:1/health")
    assert "--wait" in lines[0]
    assert "connection refused" in lines[0]
    assert lines[1] == "http://h:1/health is healthy after 12 s"
    assert lines[2] == "c=8: warm-up, 8 short requests (not counted)"
    assert len(lines) == 3  # the second failed check adds no line of its own


def test_on_a_terminal_the_bar_moves_with_tokens_not_requests() -> None:
    """On a TTY the bar's completed count is the output tokens so far, before any request ends."""
    out = TtyBuffer()
    with TerminalProgress(out, tty=True, colour=False) as bar:
        bar.level_started(Level(8), 10, None)
        bar.update(live(0, tokens=250))
        assert bar._live is not None
        assert bar._task is not None
        task = bar._live.tasks[0]
        assert (task.completed, task.total) == (250.0, 1000.0)
        bar.update(live(0, tokens=400))
        assert bar._live.tasks[0].completed == 400.0
        bar.level_finished(live(10, tokens=1000))
    assert "10/10 req" in out.getvalue()


def test_under_no_color_a_terminal_gets_no_colour_codes(monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR on a terminal: the display redraws in place but sets no colour."""
    monkeypatch.setenv("NO_COLOR", "1")
    out = TtyBuffer()
    with TerminalProgress(out) as bar:
        assert bar.tty
        assert not bar.colour
        bar.warmup_started(Level(8), 8)
        bar.level_started(Level(8), 10, None)
        bar.update(live(5, tokens=500))
        if bar._live is not None:
            bar._live.refresh()
        bar.level_finished(live(10, tokens=1000))
    text = out.getvalue()
    assert "c=8" in text
    assert "\x1b[" in text
    assert not _COLOUR.search(text)


def test_a_terminal_without_no_color_gets_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    """The partner of the NO_COLOR test: the same display on a terminal does colour."""
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = TtyBuffer()
    with TerminalProgress(out) as bar:
        bar.level_started(Level(8), 10, None)
        bar.update(live(5, tokens=500))
        if bar._live is not None:
            bar._live.refresh()
    assert _COLOUR.search(out.getvalue())


def test_colour_is_wanted_only_on_a_terminal_without_no_color() -> None:
    """colour_wanted: a TTY and NO_COLOR unset or empty (no-color.org)."""
    assert colour_wanted(TtyBuffer(), {})
    assert colour_wanted(TtyBuffer(), {"NO_COLOR": ""})
    assert not colour_wanted(TtyBuffer(), {"NO_COLOR": "1"})
    assert not colour_wanted(io.StringIO(), {})


def test_both_progress_kinds_are_progress() -> None:
    """The terminal's and the silent progress satisfy the Progress protocol (mypy-checked)."""
    out = io.StringIO()
    sinks: list[Progress] = [TerminalProgress(out, tty=False), SilentProgress()]
    for sink in sinks:
        sink.level_started(Level(1), None, 5.0)
        sink.note("x")
    assert out.getvalue() == "x\n"


def test_a_dead_url_says_what_it_waits_for_and_how_long(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`bench` against a port nobody listens on names the /health URL and the --wait limit,
    then fails with exit 1 when the limit passes (no traceback)."""
    from gptoss_modal.cli import EXIT_FAILURE, main

    assert main(["bench", "http://127.0.0.1:9", "--wait", "1s"]) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "waiting up to 1 s for http://127.0.0.1:9/health" in err
    assert "--wait" in err
    assert "Traceback" not in err
