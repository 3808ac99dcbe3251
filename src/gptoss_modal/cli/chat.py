"""``gptoss-modal chat URL "prompt"``: stream the reply as it arrives, reasoning dimmed (when stdout
is a terminal), then the content; a spinner with the elapsed time shows on stderr while waiting;
the run ends with time to first token, time to last token and tokens/s
(:mod:`gptoss_modal.display`). ``--api responses`` asks ``/v1/responses`` instead of
``/v1/chat/completions`` and shows the same, plus each function or built-in tool call.
Sends ``--header`` values and Modal proxy auth from ``$GPTOSS_MODAL_KEY``/``$GPTOSS_MODAL_SECRET``.
Exit codes: 0 ok, 1 the server or the stream failed, 2 bad usage. The aiohttp client is imported
only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gptoss_modal._exceptions import ConfigError, ConnectError, HealthTimeout
from gptoss_modal.cli import EXIT_OK
from gptoss_modal.cli._options import (
    add_header_option,
    add_key_option,
    parse_duration,
    request_headers,
)
from gptoss_modal.cli.health import report_connection_failure
from gptoss_modal.display import (
    format_summary,
    print_response_stream,
    print_stream,
    wait_with_spinner,
    write_jsonl,
    write_response_jsonl,
)
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VLLM_VERSIONS
from gptoss_modal.stream.request import REASONING_EFFORTS

if TYPE_CHECKING:
    from gptoss_modal.stream.accumulator import ChatResult
    from gptoss_modal.stream.client import Client
    from gptoss_modal.stream.responses_accumulator import ResponseResult

APIS = ("chat", "responses")  # /v1/chat/completions, /v1/responses


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``chat``."""
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
    chat.add_argument(
        "--api",
        choices=APIS,
        default="chat",
        help="chat: /v1/chat/completions (default); responses: /v1/responses (the Responses "
        "API, shown the same way, with its function and built-in tool calls)",
    )
    chat.add_argument(
        "--system", help="a system message to send first (with --api responses: instructions)"
    )
    chat.add_argument(
        "--tools",
        metavar="FILE",
        type=Path,
        help="a JSON list of tools (chat-completions function tools work with both APIs)",
    )
    *others, last = REASONING_EFFORTS
    efforts = f"{', '.join(others)} or {last}"  # "low, medium or high"
    chat.add_argument("--reasoning-effort", metavar="EFFORT", help=efforts)
    chat.add_argument(
        "--vllm",
        choices=VLLM_VERSIONS,
        default=DEFAULT_VLLM_VERSION,
        help=f"the server's vLLM version, whose checks apply (default {DEFAULT_VLLM_VERSION})",
    )
    chat.add_argument("--model", help="the served model name (default: the server's only one)")
    chat.add_argument(
        "--max-tokens",
        type=int,
        help="stop after this many tokens (with --api responses: max_output_tokens)",
    )
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
    chat.add_argument(
        "--output",
        choices=("text", "jsonl"),
        default="text",
        help="text (default), or jsonl: one JSON object per reasoning/content delta, then the "
        "result with its timings (docs/streaming.md)",
    )
    add_key_option(chat)
    add_header_option(chat)
    chat.set_defaults(func=run_chat)


def run_chat(args: argparse.Namespace) -> int:
    """``gptoss-modal chat``."""
    return asyncio.run(_chat(args))


def _read_tools(path: Path | None) -> list[Any] | None:
    """The ``--tools`` file's list of tool objects (None without one)."""
    if path is None:
        return None
    allowed = "a readable JSON file holding a list of tool objects"
    try:
        tools = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError("--tools", str(path), f"{allowed} ({exc})") from exc
    if not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools):
        raise ConfigError("--tools", str(path), allowed)
    return tools


async def _chat(args: argparse.Namespace) -> int:
    from gptoss_modal.stream.client import DEFAULT_STALL_TIMEOUT_S, Client

    stall_s = DEFAULT_STALL_TIMEOUT_S if args.stall_timeout is None else args.stall_timeout
    headers = request_headers(args.header, os.environ)
    tools = _read_tools(args.tools)
    client = Client(
        args.url, api_key=args.api_key, headers=headers, model=args.model, stall_timeout_s=stall_s
    )
    async with client:
        try:
            result = await _converse(client, args, tools)
        except (ConnectError, HealthTimeout) as exc:
            return report_connection_failure(exc, args.wait)
    if result is not None:
        print(format_summary(result), file=sys.stderr)
    return EXIT_OK


async def _converse(
    client: Client, args: argparse.Namespace, tools: list[Any] | None
) -> ChatResult | ResponseResult | None:
    """Send the prompt on the chosen API and show the reply; the result when the timing line
    follows (``--output text``), None when the JSON lines carried it."""
    if args.api == "responses":
        responses = client.stream_response(  # a bad option fails here, before any waiting
            args.prompt,
            instructions=args.system,
            reasoning_effort=args.reasoning_effort,
            tools=tools,
            max_output_tokens=args.max_tokens,
        )
        if args.wait:
            await wait_with_spinner(client, args.wait, sys.stderr)
        async with responses:
            if args.output == "jsonl":  # the timings are on its last line
                await write_response_jsonl(responses, sys.stdout)
                return None
            result = await print_response_stream(responses, sys.stdout, sys.stderr)
        if result.output.status == "incomplete":  # cut short (vLLM 0.33.0 says so)
            reason = result.output.incomplete_reason or "no reason given"
            print(f"gptoss-modal: note: the response is incomplete ({reason})", file=sys.stderr)
        return result
    stream = client.stream_chat(  # a bad option fails here, before any waiting
        args.prompt,
        system=args.system,
        reasoning_effort=args.reasoning_effort,
        tools=tools,
        vllm_version=args.vllm,
        max_tokens=args.max_tokens,
    )
    if args.wait:
        await wait_with_spinner(client, args.wait, sys.stderr)
    async with stream:
        if args.output == "jsonl":
            await write_jsonl(stream, sys.stdout)
            return None
        return await print_stream(stream, sys.stdout, sys.stderr)
