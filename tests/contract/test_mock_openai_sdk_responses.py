"""The openai SDK as a real Responses client of the mock, in each vLLM version's mode: its
streamed and non-streamed calls give the same text, reasoning and function calls as our
``Client.respond``; where the SDK's ``responses.stream`` helper refuses a version's real
stream shape, the test records that (fidelity to vLLM wins, see docs/mock-server.md)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from gptoss_modal import Client
from gptoss_modal.serve.options import VLLM_VERSIONS
from gptoss_modal.testing.mock_server import MockVLLM
from tests.contract._weather import WEATHER

if TYPE_CHECKING:  # the SDK (~0.7 s to import) loads in these tests, not at every collection
    from openai import AsyncOpenAI

# One xdist worker runs the openai SDK's tests, so one worker imports the SDK.
pytestmark = [pytest.mark.mock_only, pytest.mark.xdist_group("openai")]

PROMPTS = {"answer": ("Say hello.", []), "call": ("Use get_weather for Paris.", [WEATHER])}


def sdk(server: MockVLLM) -> AsyncOpenAI:
    """An SDK client of the mock (no retries: a failure shows at once)."""
    from openai import AsyncOpenAI

    return AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def summary(output: list[Any]) -> tuple[str, str, list[tuple[str, Any]]]:
    """Text, reasoning and function calls (name, parsed arguments) of a response's output."""
    text = reasoning = ""
    calls = []
    for item in output:
        if item.type == "message":
            text += "".join(part.text for part in item.content)
        elif item.type == "reasoning":
            reasoning += "".join(part.text for part in item.content or [])
        elif item.type == "function_call":
            calls.append((item.name, json.loads(item.arguments)))
    return text, reasoning, calls


async def ours(server: MockVLLM, prompt: str, tools: list[Any]) -> tuple[str, str, list[Any]]:
    """What our client makes of the same request."""
    async with Client(server.url) as client:
        result = await client.respond(prompt, tools=tools or None)
    out = result.output
    calls = [(c.name, c.parsed_arguments()) for c in out.function_calls]
    return out.text, out.reasoning, calls


# 0.13.0's function-call output_item.done has "id": null (and names it in item_id): our parser
# keys it by item_id, so that case is checked like the rest.
CASES = [(version, kind) for version in VLLM_VERSIONS for kind in PROMPTS]


@pytest.mark.parametrize(("version", "kind"), CASES)
async def test_sdk_stream_and_reply_agree_with_our_client(
    start_mock: Any, version: str, kind: str
) -> None:
    """``responses.create(stream=True)`` (its terminal event's response) and the non-streamed
    ``responses.create`` give our client's text, reasoning and function calls."""
    from openai.types.responses import ResponseCompletedEvent

    server = await start_mock(vllm_version=version, content_tokens=8)
    prompt, tools = PROMPTS[kind]
    expected = await ours(server, prompt, tools)
    assert expected[1]  # gpt-oss reasons first
    assert bool(expected[2]) == (kind == "call")
    client = sdk(server)
    options: dict[str, Any] = {"model": "llm", "input": prompt, "tools": tools}
    stream = await client.responses.create(**options, stream=True)
    events = [event async for event in stream]
    last = events[-1]
    assert isinstance(last, ResponseCompletedEvent)
    assert summary(last.response.output) == expected
    reply = await client.responses.create(**options)
    assert summary(reply.output) == expected
    assert reply.output_text == expected[0]
    await client.close()


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_sdk_stream_helper(start_mock: Any, version: str) -> None:
    """The ``responses.stream`` helper's final response gives our client's answer on 0.33.0;
    on 0.13.0 its output indexes (raised before each done event, as vLLM does) make the
    helper fail with IndexError, as it does on a real 0.13.0 server."""
    server = await start_mock(vllm_version=version, content_tokens=8)
    expected = await ours(server, "Say hello.", [])
    client = sdk(server)
    if version == "0.13.0":
        with pytest.raises(IndexError):
            async with client.responses.stream(model="llm", input="Say hello.") as stream:
                await stream.get_final_response()
    else:
        async with client.responses.stream(model="llm", input="Say hello.") as stream:
            final = await stream.get_final_response()
        assert summary(final.output) == expected
    await client.close()
