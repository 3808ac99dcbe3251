"""The client reads the same answer from a stream as the openai SDK does.

The streams are vLLM 0.13.0's shapes (the renderer is checked against vLLM's own classes in
``test_client_vllm_shapes.py``), served by a real aiohttp server.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given, settings

from gptoss_modal.stream.client import Client
from tests.strategies_stream import (
    VLLM_USAGE,
    ReplayServer,
    Reply,
    delta_scripts,
    render_vllm_chunk,
    vllm_stream,
)

# One xdist worker runs the openai SDK's tests, so one worker imports the SDK (~0.7 s), and
# not every worker at collection.
pytestmark = pytest.mark.xdist_group("openai")


async def openai_sdk_reads(url: str) -> dict[str, Any]:
    """What an openai SDK user assembles from the stream: text, reasoning, calls, usage."""
    import openai

    content, reasoning = "", ""
    calls: dict[int, dict[str, str]] = {}
    finish, usage = None, None
    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0) as sdk:
        stream = await sdk.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage.completion_tokens
            for choice in chunk.choices:
                delta = choice.delta
                content += delta.content or ""
                reasoning += getattr(delta, "reasoning", None) or ""
                for call in delta.tool_calls or []:
                    slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = call.id or slot["id"]
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
                finish = choice.finish_reason or finish
    return {
        "content": content,
        "reasoning": reasoning,
        "calls": [calls[i] for i in sorted(calls)],
        "finish": finish,
        "usage": usage,
    }


async def our_client_reads(url: str) -> dict[str, Any]:
    async with Client(url, api_key="k") as client:
        result = await client.chat("hi", model="m")
    message = result.message
    return {
        "content": message.content,
        "reasoning": message.reasoning,
        "calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls
        ],
        "finish": message.finish_reason,
        "usage": result.completion_tokens,
    }


@settings(max_examples=30)
@given(script=delta_scripts())
def test_client_and_openai_sdk_read_the_same_answer(script: list[dict[str, Any]]) -> None:
    """For any vLLM-shaped generation, our accumulated message equals what the SDK user gets."""

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        writes = vllm_stream(*(render_vllm_chunk(step) for step in script), VLLM_USAGE)
        async with ReplayServer(Reply(writes)) as server:
            return await openai_sdk_reads(server.url), await our_client_reads(server.url)

    sdk, ours = asyncio.run(both())
    assert ours == sdk
