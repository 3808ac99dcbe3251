"""The Responses stream side against each vLLM version's own bytes, and the client over HTTP.

``vllm_ops_responses.py`` builds a response's events with the classes that version's serving
code uses and serialises them with that version's own router function. Our parser must type
every one of them, keep each field it types exactly as vLLM sent it, and the client, reading
those bytes from a real server on port 0, must give the text, reasoning, function call and
usage, raise the incomplete-stream error with the partial on truncation at every event
boundary, and raise ``UpstreamError`` with vLLM's message for an in-stream error.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from gptoss_modal import (
    Client,
    IncompleteStreamError,
    ResponseEventDecoder,
    ResponseResult,
    UnknownEvent,
    UpstreamError,
    encode_event,
)
from gptoss_modal.stream.responses import AnyResponseEvent, event_to_builtins
from tests.contract._oracle import VllmOracle

pytestmark = pytest.mark.vllm

ARGUMENTS = ['{"city": ', '"Paris"}']
USAGE = {"input": 21, "output": 13, "reasoning": 4, "cached": 16}


def vllm_stream(vllm: VllmOracle, *, terminal: str = "completed", call: bool = True) -> str:
    """The bytes this vLLM version writes for a reasoning, answer and function-call response."""
    script = {
        "reasoning": ["The user", " wants weather."],
        "text": ["Let me ", "check."],
        "call": {"name": "get_weather", "arguments": ARGUMENTS} if call else None,
        "terminal": terminal,
        "usage": USAGE,
    }
    answer = vllm.call("responses_stream", script=script)
    assert answer["ok"], answer
    sse: str = answer["sse"]
    return sse


def split_events(sse: str) -> list[bytes]:
    """The stream as one write per event, as vLLM's router yields them."""
    return [(block + "\n\n").encode() for block in sse.split("\n\n") if block]


def decoded(data: bytes) -> list[AnyResponseEvent]:
    into: list[AnyResponseEvent] = []
    assert ResponseEventDecoder().feed(data, into)
    return into


def agrees(ours: Any, theirs: Any, where: str = "$") -> None:
    """Every field we type holds exactly what vLLM sent (fields we do not type are skipped)."""
    if isinstance(ours, dict):
        assert isinstance(theirs, dict), where
        for key, value in ours.items():
            if key in theirs:
                agrees(value, theirs[key], f"{where}.{key}")
            else:  # a field this version does not send stays at its default
                assert value in (None, "", 0, -1, [], ()), f"{where}.{key}={value!r}"
    elif isinstance(ours, (list, tuple)):
        assert isinstance(theirs, list), where
        assert len(ours) == len(theirs), where
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            agrees(a, b, f"{where}[{i}]")
    else:
        assert ours == theirs, where


def test_every_vllm_event_parses_typed_and_round_trips(vllm_each: VllmOracle) -> None:
    """Each event this version writes parses as its typed value, whose fields re-encode to
    exactly vLLM's values (0.13.0 without by_alias, 0.33.0 with it)."""
    sse = vllm_stream(vllm_each, terminal="incomplete")
    events = decoded(sse.encode())
    blocks = [b for b in sse.split("\n\n") if b]
    assert len(events) == len(blocks)
    for event, block in zip(events, blocks, strict=True):
        kind, data = block.split("\n")
        assert not isinstance(event, UnknownEvent), kind
        assert kind == f"event: {event.type}"
        theirs = json.loads(data.removeprefix("data: "))
        agrees(event_to_builtins(event), theirs)
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_version_differences_are_what_we_document(vllm_each: VllmOracle) -> None:
    """0.13.0: its own reasoning_part events and a completed terminal even when cut; 0.33.0:
    response.incomplete with its reason, and usage with per-turn counts."""
    sse = vllm_stream(vllm_each, terminal="incomplete")
    events = decoded(sse.encode())
    types = {e.type for e in events}
    result = ResponseResult()
    result.chunks = events
    out = result.output
    if vllm_each.version == "0.13.0":
        assert "response.reasoning_part.added" in types
        assert (events[-1].type, out.status) == ("response.completed", "completed")
    else:
        assert "response.reasoning_part.added" not in types
        assert (events[-1].type, out.status) == ("response.incomplete", "incomplete")
        assert out.incomplete_reason == "max_output_tokens"
        assert '"input_tokens_per_turn"' in sse.rsplit("\n\n", 2)[-2]


@asynccontextmanager
async def serve(writes: list[bytes]) -> AsyncIterator[str]:
    """A server on port 0 whose ``POST /v1/responses`` writes ``writes`` one by one."""
    bodies: list[Any] = []

    async def respond(request: web.Request) -> web.StreamResponse:
        bodies.append(await request.json())
        reply = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await reply.prepare(request)
        for piece in writes:
            await reply.write(piece)
        return reply

    app = web.Application()
    app.router.add_post("/v1/responses", respond)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_client_reads_text_reasoning_call_and_usage(vllm_each: VllmOracle) -> None:
    """Through HTTP: the answer, the reasoning, the complete call and the usage counts."""
    async with serve(split_events(vllm_stream(vllm_each))) as url, Client(url) as client:
        result = await client.respond("weather?", reasoning_effort="low", max_output_tokens=64)
    out = result.output
    assert result.done
    assert (out.reasoning, out.text) == ("The user wants weather.", "Let me check.")
    (call,) = out.function_calls
    assert (call.id, call.name, call.parsed_arguments()) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert out.usage is not None
    assert (out.usage.input_tokens, out.usage.output_tokens) == (21, 13)
    assert (out.usage.cached_tokens, out.usage.reasoning_tokens) == (16, 4)
    assert result.first_chunk_s is not None
    assert result.ttft_s is not None
    assert result.ttft_content_s is not None
    assert result.first_chunk_s <= result.ttft_s <= result.ttft_content_s


async def test_iterating_yields_each_event_then_ends(vllm_each: VllmOracle) -> None:
    """``async for`` yields every event with an arrival stamp and stops after the terminal."""
    writes = split_events(vllm_stream(vllm_each, call=False))
    async with serve(writes) as url, Client(url) as client, client.stream_response("hi") as stream:
        seen = [event async for event in stream]
    assert len(seen) == len(writes)
    assert all(e.arrival > 0 for e in seen)
    assert seen[-1].type in ("response.completed", "response.incomplete")


async def test_a_cut_at_every_event_boundary_raises_incomplete_with_the_partial(
    vllm_each: VllmOracle,
) -> None:
    """A body that ends after event k (before the terminal one) raises IncompleteStreamError
    whose partial holds exactly those k events."""
    writes = split_events(vllm_stream(vllm_each, call=False))
    for k in range(len(writes)):
        async with serve(writes[:k]) as url, Client(url) as client:
            with pytest.raises(IncompleteStreamError) as caught:
                await client.respond("hi")
        partial = caught.value.partial
        assert isinstance(partial, ResponseResult)
        assert len(partial.events) == k
        assert not partial.done


async def test_an_in_stream_error_raises_upstream_error_with_the_partial(
    vllm_each: VllmOracle,
) -> None:
    """vLLM's error payload mid-stream raises UpstreamError with its message, partial kept."""
    writes = split_events(vllm_stream(vllm_each, call=False))[:5]
    error = {"error": {"message": "EngineCore died", "type": "InternalServerError", "code": 500}}
    writes.append(encode_event(json.dumps(error), event="error"))
    async with serve(writes) as url, Client(url) as client:
        with pytest.raises(UpstreamError, match="EngineCore died") as caught:
            await client.respond("hi")
    partial = caught.value.partial
    assert isinstance(partial, ResponseResult)
    assert len(partial.events) == 5
