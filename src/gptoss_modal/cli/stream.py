"""``gptoss-modal health`` and ``gptoss-modal chat``: talk to a running server from a terminal.

``health URL [--wait 30m]`` checks ``/health`` once, or keeps checking through a cold start.
``chat URL "prompt"`` streams the reply: reasoning dimmed (when stdout is a terminal), then the
content, as they arrive; a spinner with the elapsed time shows on stderr (when it is a terminal)
while waiting; the run ends with time to first token, time to last token and tokens/s.
:func:`print_stream` and :func:`format_summary` are that display, for other front ends (the
Modal app's ``modal run``). Both commands send ``--header`` values and Modal proxy auth from
``$GPTOSS_MODAL_KEY``/``$GPTOSS_MODAL_SECRET``. Exit codes: 0 ok, 1 the server or the stream
failed, 2 bad usage. The aiohttp client is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any, TextIO

from gptoss_modal._exceptions import ConnectError, HealthTimeout
from gptoss_modal.cli import EXIT_FAILURE, EXIT_OK
from gptoss_modal.cli._options import add_header_option, request_headers

if TYPE_CHECKING:  # the client imports aiohttp: only when a command runs
    from gptoss_modal.chunks import ChatResult
    from gptoss_modal.client import ChatStream, Client, HealthProgress

API_KEY_ENV = "GPTOSS_API_KEY"
SPINNER_PERIOD_S = 0.1
_DIM, _RESET = "\x1b[2m", "\x1b[0m"
_CLEAR_LINE = "\r\x1b[K"
_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|)")


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``1.5m``, ``30m``, ``2h`` or ``500ms``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration: use a number with s, m, h or ms (e.g. 90s, 30m)"
        )
    return float(match[1]) * _UNITS_S[match[2]]


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``health`` and ``chat``."""
    health = subparsers.add_parser(
        "health",
        help="check a server's /health, or wait for it through a cold start",
        description="Check URL/health once, or with --wait keep checking until it answers 200.",
    )
    health.add_argument("url", help="the server's root URL (a trailing /v1 is fine)")
    health.add_argument(
        "--wait",
        type=parse_duration,
        default=0.0,
        metavar="DURATION",
        help="keep checking for up to this long, e.g. 30m (default: check once)",
    )
    _add_key_option(health)
    add_header_option(health)
    health.set_defaults(func=run_health)

    chat = subparsers.add_parser(
        "chat",
        help="stream a chat reply: reasoning (dimmed), content and timings",
        description=(
            "Send one prompt and stream the reply as it arrives: reasoning dimmed, then the "
            "content; then time to first token, time to last token and tokens/s."
        ),
    )
    chat.add_argument("url", help="the server's root URL (a trailing /v1 is fine)")
    chat.add_argument("prompt", help="the user message")
    chat.add_argument("--system", help="a system message to send first")
    chat.add_argument("--reasoning-effort", metavar="EFFORT", help="low, medium or high")
    chat.add_argument("--model", help="the served model name (default: the server's only one)")
    chat.add_argument("--max-tokens", type=int, help="stop after this many tokens")
    chat.add_argument(
        "--wait",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="first wait up to this long for /health (a cold start); default: do not wait",
    )
    chat.add_argument(
        "--stall-timeout",
        type=parse_duration,
        default=None,  # the client's DEFAULT_STALL_TIMEOUT_S (imported only when chat runs)
        metavar="DURATION",
        help="fail when no bytes arrive for this long, first token included (default 120s)",
    )
    _add_key_option(chat)
    add_header_option(chat)
    chat.set_defaults(func=run_chat)


def _add_key_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV),
        help=f"the server's API key (default: ${API_KEY_ENV})",
    )


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


def run_health(args: argparse.Namespace) -> int:
    """``gptoss-modal health``."""
    return asyncio.run(_health(args))


async def _health(args: argparse.Namespace) -> int:
    from gptoss_modal.client import Client

    headers = request_headers(args.header, os.environ)
    async with Client(args.url, api_key=args.api_key, headers=headers) as client:
        try:
            progress = await _wait(client, args.wait)
        except (ConnectError, HealthTimeout) as exc:
            return _fail(exc, args.wait)
    checks = "1 check" if progress.attempts == 1 else f"{progress.attempts} checks"
    print(f"{client.base_url} is healthy ({checks}, {progress.elapsed_s:.1f} s)")
    return EXIT_OK


async def _wait(client: Client, wait_s: float) -> HealthProgress:
    """Wait for health with a spinner on stderr showing the last status."""
    spinner = Spinner(sys.stderr)

    def show(progress: HealthProgress) -> None:
        spinner.label = f"waiting for {client.base_url}/health: {progress.last_status}"

    spinner.start(f"checking {client.base_url}/health")
    try:
        return await client.wait_healthy(timeout_s=wait_s, on_progress=show)
    finally:
        spinner.stop()


def _fail(exc: ConnectError | HealthTimeout, wait_s: float | None) -> int:
    """Print a connection failure with what to try next; the run failed."""
    from gptoss_modal.client import worth_waiting

    print(f"gptoss-modal: error: {exc}", file=sys.stderr)
    if not wait_s and worth_waiting(exc):  # not for a host that does not resolve, or TLS
        print(
            "gptoss-modal: is the server running? To wait for it to start (a Modal cold start "
            "can take minutes), add --wait 30m",
            file=sys.stderr,
        )
    return EXIT_FAILURE


def run_chat(args: argparse.Namespace) -> int:
    """``gptoss-modal chat``."""
    return asyncio.run(_chat(args))


async def _chat(args: argparse.Namespace) -> int:
    from gptoss_modal.client import DEFAULT_STALL_TIMEOUT_S, Client

    stall_s = DEFAULT_STALL_TIMEOUT_S if args.stall_timeout is None else args.stall_timeout
    headers = request_headers(args.header, os.environ)
    client = Client(
        args.url, api_key=args.api_key, headers=headers, model=args.model, stall_timeout_s=stall_s
    )
    async with client:
        stream = client.stream_chat(  # a bad option fails here, before any waiting
            args.prompt,
            system=args.system,
            reasoning_effort=args.reasoning_effort,
            max_tokens=args.max_tokens,
        )
        try:
            if args.wait:
                await _wait(client, args.wait)
            async with stream:
                result = await print_stream(stream, sys.stdout, sys.stderr)
        except (ConnectError, HealthTimeout) as exc:
            return _fail(exc, args.wait)
    print(format_summary(result), file=sys.stderr)
    return EXIT_OK


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
