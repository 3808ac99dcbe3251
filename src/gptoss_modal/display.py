"""The terminal display shared by the CLI and the Modal app's ``modal run``: a spinner while
waiting, a chat reply printed as it arrives (reasoning dimmed on a terminal), and the one-line
timing summary. Imports no aiohttp: the client's types are only named for the type checker.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from gptoss_modal.bench.progress import LiveStats
    from gptoss_modal.bench.settings import Level
    from gptoss_modal.stream.accumulator import ChatResult
    from gptoss_modal.stream.chunks import ChatChunk
    from gptoss_modal.stream.client import ChatStream, Client, HealthProgress

__all__ = [
    "JSONL_SCHEMA",
    "Spinner",
    "TerminalProgress",
    "format_summary",
    "print_stream",
    "result_record",
    "wait_with_spinner",
    "write_jsonl",
]

SPINNER_PERIOD_S = 0.1
_DIM, _RESET = "\x1b[2m", "\x1b[0m"
_CLEAR_LINE = "\r\x1b[K"


class Spinner:
    """A one-line spinner with the elapsed time on a terminal; silent anywhere else."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._enabled = stream.isatty()
        self._task: asyncio.Task[None] | None = None
        self.label = ""

    def start(self, label: str) -> None:
        """Show ``label`` and the seconds since now, until :meth:`stop`."""
        self.label = label
        if self._enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._spin(time.monotonic()))

    async def _spin(self, started: float) -> None:
        for frame in itertools.cycle("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"):
            elapsed = time.monotonic() - started
            self._stream.write(f"{_CLEAR_LINE}{frame} {self.label}  {elapsed:.1f} s")
            self._stream.flush()
            await asyncio.sleep(SPINNER_PERIOD_S)

    def stop(self) -> None:
        """Stop and clear the line (does nothing if not spinning)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self._stream.write(_CLEAR_LINE)
            self._stream.flush()


async def wait_with_spinner(client: Client, wait_s: float, err: TextIO) -> HealthProgress:
    """Wait for health with a spinner on stderr showing the last status."""
    spinner = Spinner(err)

    def show(progress: HealthProgress) -> None:
        spinner.label = f"waiting for {client.base_url}/health: {progress.last_status}"

    spinner.start(f"checking {client.base_url}/health")
    try:
        return await client.wait_healthy(timeout_s=wait_s, on_progress=show)
    finally:
        spinner.stop()


async def print_stream(stream: ChatStream, out: TextIO, err: TextIO) -> ChatResult:
    """Print a chat reply as it arrives and return the stream's result.

    A spinner on ``err`` (when it is a terminal) until the first text; then the reasoning
    (dimmed when ``out`` is a terminal), a blank line and the content on ``out``, ended with a
    newline. Errors propagate, with what arrived before them printed.
    """
    dim = out.isatty()
    spinner = Spinner(err)
    spinner.start("waiting for the first token")
    in_reasoning = False
    wrote = False
    try:
        async for chunk in stream:
            reasoning, content = chunk.reasoning, chunk.content
            if not (reasoning or content):
                continue
            spinner.stop()
            if reasoning:
                out.write(f"{_DIM}{reasoning}{_RESET}" if dim else reasoning)
                in_reasoning = True
            if content:
                if in_reasoning:
                    out.write("\n\n")
                    in_reasoning = False
                out.write(content)
            wrote = True
            out.flush()
    finally:
        spinner.stop()
        if wrote:
            out.write("\n")
            out.flush()
    return stream.result


# ``chat --output jsonl``: one JSON object per line, each with "type" (docs/streaming.md).
JSONL_SCHEMA: Final = 1


def _line(out: TextIO, record: dict[str, Any]) -> None:
    out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n")
    out.flush()  # each line as it arrives: a script reads the stream, not the end


def _delta_records(chunk: ChatChunk, started: float) -> list[dict[str, Any]]:
    """A chunk's reasoning, content and tool-call fragments, one record each."""
    at = {"t_s": round(chunk.arrival - started, 6)}
    records: list[dict[str, Any]] = []
    if chunk.reasoning:
        records.append({"type": "reasoning", "text": chunk.reasoning, **at})
    if chunk.content:
        records.append({"type": "content", "text": chunk.content, **at})
    for call in chunk.tool_calls:
        function = call.function
        records.append(
            {
                "type": "tool_call",
                "index": call.index,
                "id": call.id,
                "name": function.name if function else None,
                "arguments": function.arguments if function else None,
                **at,
            }
        )
    return records


def result_record(result: ChatResult) -> dict[str, Any]:
    """The last line of ``--output jsonl``: how the reply ended, its usage and its timings."""
    usage = result.usage
    return {
        "type": "result",
        "schema": JSONL_SCHEMA,
        "done": result.done,
        "finish_reason": result.finish_reason,
        "usage": None
        if usage is None
        else {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
        "ttft_s": result.ttft_s,
        "ttft_content_s": result.ttft_content_s,
        "ttlt_s": result.ttlt_s,
        "decode_tokens_per_s": result.decode_tokens_per_s,
    }


async def write_jsonl(stream: ChatStream, out: TextIO) -> ChatResult:
    """Write a chat reply as JSON lines: one per channel delta as it arrives, then the result.

    A failure mid-stream writes an ``error`` line (after every delta that arrived) and is
    raised again, so the caller reports it and exits non-zero.
    """
    from gptoss_modal._exceptions import GptossModalError

    try:
        async for chunk in stream:
            for record in _delta_records(chunk, stream.result.started):
                _line(out, record)
    except GptossModalError as exc:
        _line(out, {"type": "error", "error": type(exc).__name__, "message": str(exc)})
        raise
    _line(out, result_record(stream.result))
    return stream.result


def format_summary(result: ChatResult) -> str:
    """``time to first token 0.42 s · time to first content 1.20 s · time to last token 3.10 s ·
    512 tokens · 190.5 tokens/s`` (first content only when it came after the first token)."""

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} s"

    parts = [f"time to first token {seconds(result.ttft_s)}"]
    if result.ttft_content_s is not None and result.ttft_content_s != result.ttft_s:
        parts.append(f"time to first content {seconds(result.ttft_content_s)}")
    parts.append(f"time to last token {seconds(result.ttlt_s)}")
    tokens = result.completion_tokens
    parts.append(f"{tokens} tokens" if tokens is not None else "tokens n/a")
    rate = result.decode_tokens_per_s
    parts.append(f"{rate:.1f} tokens/s" if rate is not None else "tokens/s n/a")
    return " · ".join(parts)


class TerminalProgress:
    """The benchmark's progress (a :class:`gptoss_modal.bench.Progress`): a bar per level on a
    terminal, redrawn in place, and one line per level anywhere else."""

    WIDTH: Final = 24

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty

    def note(self, message: str) -> None:
        """Print ``message`` on its own line."""
        self.stream.write(f"{message}\n")
        self.stream.flush()

    def level_started(self, level: Level, total: int | None, duration_s: float | None) -> None:
        """Draw the level's empty bar (on a terminal)."""
        if self.tty:
            # Imported here: the display loads the benchmark only when it shows one.
            from gptoss_modal.bench.progress import LiveStats

            self.update(LiveStats(level, 0, 0, 0, 0.0, 0.0, total, duration_s))

    def _line(self, live: LiveStats) -> str:
        if live.total:
            fraction = live.done / live.total
            count = f"{live.done}/{live.total} req"
        elif live.duration_s:
            fraction = live.elapsed_s / live.duration_s
            count = f"{live.done} req"
        else:
            fraction, count = 0.0, f"{live.done} req"
        filled = int(self.WIDTH * max(0.0, min(1.0, fraction)))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        minutes, seconds = divmod(int(live.elapsed_s), 60)
        return (
            f"{live.level.label:<16} [{bar}] {count}  {live.errors} err  "
            f"{live.in_flight} in flight  {live.tokens_per_s:,.0f} tok/s  "
            f"{minutes:02d}:{seconds:02d}"
        )

    def update(self, live: LiveStats) -> None:
        """Redraw the bar in place (on a terminal; nothing elsewhere)."""
        if self.tty:
            self.stream.write("\r" + self._line(live) + "\x1b[K")
            self.stream.flush()

    def level_finished(self, live: LiveStats) -> None:
        """The level's final line, kept."""
        self.stream.write(
            ("\r" if self.tty else "") + self._line(live) + ("\x1b[K" if self.tty else "") + "\n"
        )
        self.stream.flush()
