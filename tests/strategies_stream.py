"""Test support for the streaming layer: strategies, a reference decoder, vLLM-shaped samples
and a replay server.

``reference_decode`` is a deliberately literal, whole-stream reading of the WHATWG rules (decode
everything, cut it into lines, apply each line in turn): slow and obviously right, so the
incremental decoder can be checked against it on arbitrary bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web
from hypothesis import strategies as st

from gptoss_modal.stream.sse import ServerSentEvent, encode_event

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass
class _ReferenceState:
    """The WHATWG parser's buffers between lines."""

    data: str = ""
    event: str = ""
    last_id: str = ""
    retry: int | None = None

    def field(self, name: str, value: str) -> None:
        """Process one field line (unknown fields are ignored)."""
        if name == "data":
            self.data += value + "\n"
        elif name == "event":
            self.event = value
        elif name == "id" and "\0" not in value:
            self.last_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            self.retry = int(value)

    def dispatch(self) -> ServerSentEvent | None:
        """A blank line: the event built so far (``None`` without data), then reset."""
        event = (
            ServerSentEvent(self.data[:-1], self.event or "message", self.last_id, self.retry)
            if self.data
            else None
        )
        self.data, self.event, self.retry = "", "", None
        return event


def reference_decode(stream: bytes) -> list[ServerSentEvent]:
    """The events of a complete stream, following the WHATWG steps one line at a time."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    events: list[ServerSentEvent] = []
    state = _ReferenceState()
    position = 0
    while (end := _LINE_END.search(text, position)) is not None:  # an unended last line is lost
        line = text[position : end.start()]
        position = end.end()
        if line == "":
            event = state.dispatch()
            if event is not None:
                events.append(event)
        elif not line.startswith(":"):
            name, colon, value = line.partition(":")
            state.field(name, value[1:] if colon and value.startswith(" ") else value)
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (clamped and sorted), keeping every byte in order."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


# Field text: anything but line breaks (surrogates cannot be encoded to UTF-8).
field_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"))
# Data may hold LF (it becomes several data: lines); CR would come back as LF, so it is left out.
data_text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r"))


@st.composite
def event_specs(draw: st.DrawFn) -> tuple[str, str | None, str | None, int | None]:
    """(data, event, id, retry) for :func:`encode_event`; ``None`` fields are not written."""
    event = draw(st.none() | field_text)
    event_id = draw(st.none() | field_text.filter(lambda s: "\0" not in s))
    retry = draw(st.none() | st.integers(min_value=0, max_value=10**9))
    return draw(data_text), event, event_id, retry


def expected_events(
    specs: list[tuple[str, str | None, str | None, int | None]],
) -> list[ServerSentEvent]:
    """What decoding the encoded specs must give: ids persist, an empty type means message."""
    events, last_id = [], ""
    for data, event, event_id, retry in specs:
        if event_id is not None:
            last_id = event_id
        events.append(ServerSentEvent(data, event or "message", last_id, retry))
    return events


def encode_specs(specs: list[tuple[str, str | None, str | None, int | None]]) -> bytes:
    return b"".join(
        encode_event(data, event=event, id=event_id, retry=retry)
        for data, event, event_id, retry in specs
    )


# Bytes that stress the decoder: line ends, colons, spaces, field names, UTF-8 pieces, a BOM.
_PIECES = [
    b"\r", b"\n", b"\r\n", b":", b" ", b"data", b"event", b"id", b"retry", b"12", b"\x00",
    b"\xef\xbb\xbf", b"\xc3", b"\xa9", b"\xe2\x82\xac", b"\xf0\x9f", b"\x98\x80", b"x", b"[DONE]",
]  # fmt: skip
wire_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(_PIECES), max_size=80).map(b"".join),
)


# --- vLLM-shaped chunks ---
#
# Literal events as vLLM 0.13.0 serialises them (model_dump_json(exclude_unset=True); note the
# first chunk's "prompt_token_ids":null and the later choices' "token_ids":null).
# tests/contract/test_client_vllm_shapes.py checks each against vLLM's own classes.

VLLM_ROLE = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    '[{"index":0,"delta":{"role":"assistant","content":"","reasoning_content":null},'
    '"logprobs":null,"finish_reason":null}],"prompt_token_ids":null}'
)
VLLM_REASONING = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    '[{"index":0,"delta":{"reasoning":"Let me think","reasoning_content":"Let me think"},'
    '"logprobs":null,"finish_reason":null,"token_ids":null}]}'
)
VLLM_CONTENT = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    '[{"index":0,"delta":{"content":"Hello","reasoning_content":null},'
    '"logprobs":null,"finish_reason":null,"token_ids":null}]}'
)
VLLM_TOOL_START = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    '[{"index":0,"delta":{"reasoning_content":null,"tool_calls":[{"id":"chatcmpl-tool-abc",'
    '"type":"function","index":0,"function":{"name":"get_weather","arguments":""}}]},'
    '"logprobs":null,"finish_reason":null,"token_ids":null}]}'
)
VLLM_TOOL_ARGS = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    '[{"index":0,"delta":{"reasoning_content":null,"tool_calls":[{"index":0,"function":'
    '{"arguments":"{\\"city\\": \\"Paris\\"}"}}]},"logprobs":null,"finish_reason":null,'
    '"token_ids":null}]}'
)
VLLM_FINISH_WITH_TEXT = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    '[{"index":0,"delta":{"content":" world.","reasoning_content":null},"logprobs":null,'
    '"finish_reason":"stop","stop_reason":null,"token_ids":null}]}'
)
VLLM_USAGE = (
    '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
    '"usage":{"prompt_tokens":12,"total_tokens":20,"completion_tokens":8}}'
)
VLLM_ERROR = (
    '{"error": {"message": "the engine died", "type": "InternalServerError", "param": null, '
    '"code": 500}}'
)


@st.composite
def delta_scripts(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A generation as vLLM streams it: reasoning, then tool calls or content, then finish.

    Each step is one chunk's content, as accepted by :func:`render_vllm_chunk`.
    """
    text = st.text(min_size=1, max_size=12)
    steps: list[dict[str, Any]] = [{"role": "assistant"}]
    steps += [{"reasoning": r} for r in draw(st.lists(text, max_size=6))]
    if draw(st.booleans()):
        calls = draw(st.integers(min_value=1, max_value=3))
        for index in range(calls):
            name = draw(st.sampled_from(["get_weather", "search", "add"]))
            steps.append(
                {"tool_start": {"index": index, "id": f"chatcmpl-tool-{index}", "name": name}}
            )
            steps += [
                {"tool_args": {"index": index, "arguments": a}}
                for a in draw(st.lists(text, max_size=4))
            ]
        finish = "tool_calls"
    else:
        steps += [{"content": c} for c in draw(st.lists(text, max_size=6))]
        finish = draw(st.sampled_from(["stop", "length"]))
    last: dict[str, Any] = {"finish": finish}
    if finish != "tool_calls" and draw(st.booleans()):
        last["content"] = draw(text)  # a finishing chunk that still carries text
    steps.append(last)
    return steps


def render_vllm_chunk(step: dict[str, Any], *, model: str = "m") -> str:
    """One script step as vLLM 0.13.0 writes it (key order and nulls included)."""
    head = f'{{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"{model}"'
    if "role" in step:
        delta = {"role": step["role"], "content": "", "reasoning_content": None}
        return (
            head
            + ',"choices":[{"index":0,"delta":'
            + _dumps(delta)
            + ',"logprobs":null,"finish_reason":null}],"prompt_token_ids":null}'
        )
    if "reasoning" in step:
        delta = {"reasoning": step["reasoning"], "reasoning_content": step["reasoning"]}
    elif "content" in step:
        delta = {"content": step["content"], "reasoning_content": None}
    elif "tool_start" in step:
        call = step["tool_start"]
        delta = {
            "reasoning_content": None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "index": call["index"],
                    "function": {"name": call["name"], "arguments": ""},
                }
            ],
        }
    elif "tool_args" in step:
        call = step["tool_args"]
        delta = {
            "reasoning_content": None,
            "tool_calls": [{"index": call["index"], "function": {"arguments": call["arguments"]}}],
        }
    else:
        delta = {"reasoning_content": None}
    finish = step.get("finish")
    tail = f',"finish_reason":"{finish}","stop_reason":null' if finish else ',"finish_reason":null'
    return (
        head
        + ',"choices":[{"index":0,"delta":'
        + _dumps(delta)
        + ',"logprobs":null'
        + tail
        + ',"token_ids":null}]}'
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# --- a replay server: real aiohttp on 127.0.0.1:0, answering from a script ---

DROP: Final = "drop"  # in Reply.writes: close the connection abruptly, mid-body


@dataclass
class Reply:
    """One scripted answer. ``writes`` are sent in order: bytes are written, a float is a pause
    in seconds, :data:`DROP` cuts the connection. A non-200 ``status`` sends ``body`` instead."""

    writes: list[bytes | float | str] = field(default_factory=list)
    status: int = 200
    body: bytes = b""
    content_type: str = "text/event-stream; charset=utf-8"


def vllm_stream(*events: str, done: bool = True) -> list[bytes | float | str]:
    """vLLM's framing for chunk JSON texts: one ``data:`` event per write, then ``[DONE]``."""
    writes: list[bytes | float | str] = [f"data: {e}\n\n".encode() for e in events]
    if done:
        writes.append(b"data: [DONE]\n\n")
    return writes


class ReplayServer:
    """An aiohttp.web server that answers chat completions from a queue of :class:`Reply`
    (the last one repeats) and ``/health`` from a queue of statuses (the last one repeats).

    It records every chat request's headers and JSON body in ``requests``, and the client's
    (host, port) of the connection it came on in ``peers`` (one port per TCP connection).
    """

    def __init__(self, *replies: Reply, health: Sequence[int] = (200,), port: int = 0) -> None:
        self.replies = list(replies)
        self.health = list(health)
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.peers: list[tuple[str, int]] = []
        self.health_checks = 0
        self._port = port
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> ReplayServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/responses", self._chat)  # the same replay, other API
        app.router.add_get("/health", self._health)
        # Cancel a handler when its client goes away, and do not wait long for the rest at exit.
        self._runner = web.AppRunner(
            app, handle_signals=False, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _health(self, request: web.Request) -> web.Response:
        self.health_checks += 1
        status = self.health.pop(0) if len(self.health) > 1 else self.health[0]
        return web.Response(status=status)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests.append((dict(request.headers), await request.json()))
        assert request.transport is not None
        host, port = request.transport.get_extra_info("peername")[:2]
        self.peers.append((host, port))
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if reply.status != 200:
            return web.Response(
                status=reply.status, body=reply.body, content_type="application/json"
            )
        response = web.StreamResponse(headers={"Content-Type": reply.content_type})
        await response.prepare(request)
        try:
            for item in reply.writes:
                if isinstance(item, float):
                    await asyncio.sleep(item)
                elif item == DROP:
                    assert request.transport is not None
                    request.transport.abort()
                    return response
                else:
                    assert isinstance(item, bytes)
                    await response.write(item)
            await response.write_eof()
        except ConnectionResetError:  # the client went away (it may stop at an error event)
            pass
        return response


def free_port() -> int:
    """A port nothing listens on (just released by the OS), for connection-refused tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def serve_in_thread(server: ReplayServer) -> Iterator[ReplayServer]:
    """Run a replay server on its own event loop in a thread, for code that calls
    ``asyncio.run`` itself (the CLI)."""
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        loop.run_until_complete(server.__aenter__())
        started.set()
        loop.run_forever()
        loop.run_until_complete(server.__aexit__())
        loop.close()

    thread = threading.Thread(target=run, name="replay-server", daemon=True)
    thread.start()
    started.wait()
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
