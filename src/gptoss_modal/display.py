"""The terminal display shared by the CLI and the Modal app's ``modal run``: a spinner while
waiting, a chat or Responses reply printed as it arrives (reasoning dimmed on a terminal without
``NO_COLOR``, then the answer, then any calls), its JSON lines, the one-line timing summary, and
the benchmark's progress (rich, on a terminal).
Imports no aiohttp: the client's types are only named for the type checker.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from gptoss_modal.bench.progress import LiveStats
    from gptoss_modal.bench.settings import Level
    from gptoss_modal.stream.accumulator import ChatResult
    from gptoss_modal.stream.chunks import ChatChunk
    from gptoss_modal.stream.client import ChatStream, Client, HealthProgress
    from gptoss_modal.stream.responses import AnyResponseEvent, OutputItem
    from gptoss_modal.stream.responses_accumulator import ResponseResult
    from gptoss_modal.stream.responses_client import ResponseStream

__all__ = [
    "JSONL_SCHEMA",
    "Spinner",
    "TerminalProgress",
    "colour_wanted",
    "format_summary",
    "print_response_stream",
    "print_stream",
    "response_result_record",
    "result_record",
    "wait_with_spinner",
    "write_jsonl",
    "write_response_jsonl",
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


class _ReplyPrinter:
    """Writes a reply's text as it arrives: reasoning (dimmed on a colour terminal), a blank
    line, the answer, then one line per call; the spinner on ``err`` runs until the first."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._dim = colour_wanted(out)
        self._spinner = Spinner(err)
        self._in_reasoning = False
        self._wrote = False
        self._spinner.start("waiting for the first token")

    def write(self, reasoning: str = "", content: str = "", line: str = "") -> None:
        """Show one piece of the reply (empty pieces are skipped)."""
        if not (reasoning or content or line):
            return
        self._spinner.stop()
        out = self._out
        if reasoning:
            out.write(f"{_DIM}{reasoning}{_RESET}" if self._dim else reasoning)
            self._in_reasoning = True
        if content:
            if self._in_reasoning:
                out.write("\n\n")
                self._in_reasoning = False
            out.write(content)
        if line:  # a call: on a line of its own, after whatever text came before
            out.write(f"\n{line}" if self._wrote else line)
            self._in_reasoning = False
        self._wrote = True
        out.flush()

    def finish(self) -> None:
        """Stop the spinner and end the last line."""
        self._spinner.stop()
        if self._wrote:
            self._out.write("\n")
            self._out.flush()


async def print_stream(stream: ChatStream, out: TextIO, err: TextIO) -> ChatResult:
    """Print a chat reply as it arrives and return the stream's result.

    A spinner on ``err`` (when it is a terminal) until the first text; then the reasoning
    (dimmed when ``out`` is a terminal and ``NO_COLOR`` is not set), a blank line and the
    content on ``out``, then each tool call on a line of its own (as the Responses printer
    shows them), ended with a newline. Errors propagate, with what arrived before them
    printed.
    """
    printer = _ReplyPrinter(out, err)
    try:
        async for chunk in stream:
            printer.write(chunk.reasoning or "", chunk.content or "")
        for call in stream.result.message.tool_calls:  # complete only once the stream ends
            printer.write(line=f"-> {call.name}({call.arguments}) [{call.id}]")
    finally:
        printer.finish()
    return stream.result


_CALL_DONE = "response.output_item.done"
_TEXT_ITEMS = frozenset({"message", "reasoning"})  # every other output item is a call


def _finished_call(event: AnyResponseEvent) -> OutputItem | None:
    """The complete item when ``event`` ends a function or built-in tool call, else None."""
    item = getattr(event, "item", None) if event.type == _CALL_DONE else None
    return None if item is None or item.type in _TEXT_ITEMS else item


def _call_line(item: OutputItem) -> str:
    """``-> get_weather({"city": "Paris"}) [call_1]``, or a built-in tool's type and status."""
    if item.type == "function_call":
        return f"-> {item.name}({item.arguments or ''}) [{item.call_id}]"
    detail = item.code or item.arguments or ""
    name = f" {item.name}" if item.name else ""
    return f"-> {item.type}{name} {item.status or ''}".rstrip() + (f": {detail}" if detail else "")


async def print_response_stream(stream: ResponseStream, out: TextIO, err: TextIO) -> ResponseResult:
    """Print a Responses reply as :func:`print_stream` prints a chat one, then each function or
    built-in tool call on its own line as it completes; return the stream's result."""
    printer = _ReplyPrinter(out, err)
    try:
        async for event in stream:
            delta = getattr(event, "delta", "") if event.has_output else ""
            item = _finished_call(event)
            if event.type == "response.reasoning_text.delta":
                printer.write(reasoning=delta)
            elif event.has_content:
                printer.write(content=delta)
            elif item is not None:
                printer.write(line=_call_line(item))
    finally:
        printer.finish()
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


def _response_records(event: AnyResponseEvent, started: float) -> list[dict[str, Any]]:
    """An event's reasoning or answer delta, or a call it completes, as ``--output jsonl``
    records (function calls whole, as their ``output_item.done`` carries them)."""
    at = {"t_s": round(event.arrival - started, 6)}
    if event.type == "response.reasoning_text.delta":
        return [{"type": "reasoning", "text": getattr(event, "delta", ""), **at}]
    if event.has_content:
        return [{"type": "content", "text": getattr(event, "delta", ""), **at}]
    item = _finished_call(event)
    if item is None:
        return []
    if item.type == "function_call":
        call = {"id": item.call_id, "name": item.name, "arguments": item.arguments}
        return [{"type": "function_call", **call, **at}]
    tool = {"item_type": item.type, "status": item.status, "name": item.name}
    return [{"type": "builtin_tool_call", **tool, "input": item.code or item.arguments, **at}]


def response_result_record(result: ResponseResult) -> dict[str, Any]:
    """The last line of ``chat --api responses --output jsonl``: status, usage and timings."""
    usage = result.usage
    output = result.output
    details_in = usage.input_tokens_details if usage is not None else None
    details_out = usage.output_tokens_details if usage is not None else None
    return {
        "type": "result",
        "schema": JSONL_SCHEMA,
        "api": "responses",
        "done": result.done,
        "status": output.status,
        "incomplete_reason": output.incomplete_reason,
        "usage": None
        if usage is None
        else {
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "total_tokens": usage.total_tokens,
            "reasoning_tokens": details_out.reasoning_tokens if details_out else None,
            "cached_tokens": details_in.cached_tokens if details_in else None,
        },
        "ttft_s": result.ttft_s,
        "ttft_content_s": result.ttft_content_s,
        "ttlt_s": result.ttlt_s,
        "decode_tokens_per_s": result.decode_tokens_per_s,
    }


async def write_response_jsonl(stream: ResponseStream, out: TextIO) -> ResponseResult:
    """Write a Responses reply as JSON lines, as :func:`write_jsonl` writes a chat one."""
    from gptoss_modal._exceptions import GptossModalError

    try:
        async for event in stream:
            for record in _response_records(event, stream.result.started):
                _line(out, record)
    except GptossModalError as exc:
        _line(out, {"type": "error", "error": type(exc).__name__, "message": str(exc)})
        raise
    _line(out, response_result_record(stream.result))
    return stream.result


def format_summary(result: ChatResult | ResponseResult) -> str:
    """``time to first token 0.42 s · time to first content 1.20 s · time to last token 3.10 s ·
    512 tokens · 190.5 tokens/s`` (first content only when it came after the first token)."""

    def seconds(value: float | None) -> str:
        return "n/a" if value is None else f"{value:.2f} s"

    parts = [f"time to first token {seconds(result.ttft_s)}"]
    if result.ttft_content_s is not None and result.ttft_content_s != result.ttft_s:
        parts.append(f"time to first content {seconds(result.ttft_content_s)}")
    parts.append(f"time to last token {seconds(result.ttlt_s)}")
    from gptoss_modal.stream.accumulator import ChatResult  # sans-IO: no aiohttp

    # Generated tokens, reasoning included: chat's completion tokens, Responses' output tokens.
    tokens = result.completion_tokens if isinstance(result, ChatResult) else result.output_tokens
    parts.append(f"{tokens} tokens" if tokens is not None else "tokens n/a")
    rate = result.decode_tokens_per_s
    parts.append(f"{rate:.1f} tokens/s" if rate is not None else "tokens/s n/a")
    return " · ".join(parts)


def colour_wanted(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal and without ``NO_COLOR`` (set and not empty: no-color.org)."""
    env = os.environ if environ is None else environ
    return stream.isatty() and not env.get("NO_COLOR")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


def _wait_limit(seconds: float) -> str:
    """``20 min``, ``90 s``: how long a wait may last, as a person reads it."""
    if seconds >= 120 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


class TerminalProgress:
    """The benchmark's progress (a :class:`gptoss_modal.bench.Progress`) on ``stream``.

    On a terminal a rich progress display: a spinner while waiting for ``/health``, a warm-up
    marker, and per level a bar that moves with every output token, elapsed time and ETA;
    each finished level's line stays above it. Anywhere else plain lines only: the wait, each
    warm-up and each finished level. Colours only when :func:`colour_wanted` (a terminal
    without ``NO_COLOR``); use it as a context manager so the display stops on any exit.
    """

    HEALTH_LINE_EVERY: Final = 20  # checks between plain "still waiting" lines (~100 s at 5 s)
    REFRESH_PER_S: Final = 4.0  # redraws a second: a moving bar costs the run little CPU

    def __init__(
        self, stream: TextIO | None = None, *, tty: bool | None = None, colour: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.colour = (colour_wanted(self.stream) if colour is None else colour) and self.tty
        self._live: RichProgress | None = None  # once something is drawn on a terminal
        self._task: TaskID | None = None  # its one row: the health wait, a warm-up or a level

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the terminal display (the last state stays on screen); idempotent."""
        if self._live is not None:
            self._live.stop()
            self._live, self._task = None, None

    # --- drawing ---------------------------------------------------------------------------

    def _progress(self) -> RichProgress:
        """The rich display, started on first use (rich is imported only on a terminal)."""
        if self._live is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            console = Console(
                file=self.stream,
                force_terminal=True,
                color_system="standard" if self.colour else None,  # None: no styles at all
                no_color=not self.colour,
                highlight=False,
            )
            self._live = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                TextColumn("{task.fields[counts]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=console,
                refresh_per_second=self.REFRESH_PER_S,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self._live

    def _row(self, description: str, total: float | None, counts: str = "") -> None:
        """Show one row, reset to ``description`` (its elapsed time starts again)."""
        live = self._progress()
        if self._task is None:
            self._task = live.add_task(description, total=total, counts=counts)
        else:
            live.reset(self._task, total=total, description=description, counts=counts)

    def _keep(self, line: str) -> None:
        """A line that stays: above the live row on a terminal, plainly elsewhere."""
        if self._live is not None:
            from rich.text import Text

            self._live.console.print(Text(line), soft_wrap=True)
        else:
            self.stream.write(f"{line}\n")
            self.stream.flush()

    # --- the Progress protocol -------------------------------------------------------------

    def note(self, message: str) -> None:
        """Print ``message`` on its own line."""
        self._keep(message)

    def health_callback(self, url: str, timeout_s: float) -> Callable[[HealthProgress], None]:
        """An ``on_health`` for the wait: it says what it waits for and for how long at the
        first failed check, then spins (a terminal) or adds a line every
        :attr:`HEALTH_LINE_EVERY` checks; once healthy after a wait, it says so."""
        target = f"{url}/health"

        def show(state: HealthProgress) -> None:
            if state.healthy:
                if state.attempts > 1:
                    self._done_row()
                    self._keep(f"{target} is healthy after {state.elapsed_s:.0f} s")
                return
            if state.attempts == 1:
                self._keep(
                    f"waiting up to {_wait_limit(timeout_s)} for {target} (a cold start "
                    f"takes minutes; --wait changes the limit); last: {state.last_status}"
                )
            if self.tty:
                self._row(f"waiting for {target}", None, f"last: {state.last_status}")
            elif state.attempts % self.HEALTH_LINE_EVERY == 1 and state.attempts > 1:
                self._keep(
                    f"still waiting for {target}: {state.elapsed_s:.0f} s of "
                    f"{_wait_limit(timeout_s)}, last: {state.last_status}"
                )

        return show

    def warmup_started(self, level: Level, requests: int) -> None:
        """Mark the level's uncounted warm-up."""
        noun = "request" if requests == 1 else "requests"
        text = f"{level.label}: warm-up, {requests} short {noun} (not counted)"
        if self.tty:
            self._row(f"{level.label:<12} warm-up", None, f"{requests} {noun}, not counted")
        else:
            self._keep(text)

    def level_started(self, level: Level, total: int | None, duration_s: float | None) -> None:
        """Start the level's bar at zero (on a terminal)."""
        if self.tty:
            # Imported here: the display loads the benchmark only when it shows one.
            from gptoss_modal.bench.progress import LiveStats

            live = LiveStats(level, 0, 0, 0, 0.0, 0.0, total, duration_s)
            self._row(f"{level.label:<12}", self._bar_total(live), self._counts(live))

    @staticmethod
    def _bar_total(live: LiveStats) -> float | None:
        """The bar's length: output tokens when known, else the level's seconds."""
        return float(live.expected_tokens) if live.expected_tokens else live.duration_s

    @staticmethod
    def _bar_done(live: LiveStats) -> float:
        if live.expected_tokens:
            return float(min(live.tokens, live.expected_tokens))
        return live.elapsed_s

    @staticmethod
    def _counts(live: LiveStats) -> str:
        done = f"{live.done}/{live.total}" if live.total else f"{live.done}"
        return (
            f"{done} req  {live.errors} err  {live.in_flight} in flight  "
            f"{live.tokens_per_s:,.0f} tok/s"
        )

    def _line(self, live: LiveStats) -> str:
        """A finished level's line."""
        return f"{live.level.label:<16} {self._counts(live)}  {_clock(live.elapsed_s)}"

    def update(self, live: LiveStats) -> None:
        """Move the bar (on a terminal; nothing elsewhere)."""
        if self.tty and self._live is not None and self._task is not None:
            self._live.update(
                self._task,
                total=self._bar_total(live),
                completed=self._bar_done(live),
                counts=self._counts(live),
            )

    def _done_row(self) -> None:
        if self._live is not None and self._task is not None:
            self._live.remove_task(self._task)
            self._task = None
            self._live.refresh()  # else the next kept line redraws the removed row once

    def level_finished(self, live: LiveStats) -> None:
        """The level's final line, kept."""
        self._done_row()
        self._keep(self._line(live))
