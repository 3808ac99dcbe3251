"""The openai Python SDK, as a real client, consumes the server's streams and replies.

Runs against the in-process mock in each vLLM version's mode (0.13.0 and 0.33.0), or a real
server when GPTOSS_BASE_URL is set: the assertions are about shapes (reasoning reachable, tool
calls assembled, usage consistent), not texts.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VLLM_VERSIONS
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM
from tests.contract.conftest_server import MOCK_API_KEY, Target, real_base_url, real_target

if TYPE_CHECKING:  # the SDK (~0.7 s to import) loads in these tests, not at every collection
    import openai

# One xdist worker runs the openai SDK's tests, so one worker imports the SDK.
pytestmark = pytest.mark.xdist_group("openai")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Against the mock, every test runs once per version's mode; against a real server
    (which speaks one version) once, under its plain name (the e2e known failures name it)."""
    if "vllm_version" in metafunc.fixturenames and not real_base_url():
        metafunc.parametrize("vllm_version", VLLM_VERSIONS)


@pytest.fixture
def vllm_version() -> str:
    """The version whose wire format the mock serves (parametrized per version above)."""
    return DEFAULT_VLLM_VERSION


@pytest.fixture
async def target(vllm_version: str) -> AsyncIterator[Target]:
    """The mock in each version's mode, or the real server at GPTOSS_BASE_URL."""
    url = real_base_url()
    if url:
        yield real_target(url, os.environ)
        return
    version = next(v for v in VLLM_VERSIONS if v == vllm_version)
    config = MockConfig(api_keys=(MOCK_API_KEY,), content_tokens=24, vllm_version=version)
    async with MockVLLM(config) as server:
        yield Target(base_url=server.url, api_key=MOCK_API_KEY, model="llm", mock=server)


@pytest.fixture
def start_mock(start_mock: Any, vllm_version: str) -> Any:
    """In-process mocks in the version's mode."""

    async def start(**fields: Any) -> MockVLLM:
        server: MockVLLM = await start_mock(vllm_version=vllm_version, **fields)
        return server

    return start


WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def client(target: Target) -> openai.AsyncOpenAI:
    """An SDK client for the target."""
    import openai

    return openai.AsyncOpenAI(
        base_url=target.base_url + "/v1",
        api_key=target.api_key or "none",
        default_headers=target.proxy_headers,  # Modal proxy auth, when the target uses it
        max_retries=0,
    )


def reasoning_of(obj: Any) -> str | None:
    """The reasoning text of an SDK delta or message (an extra field to the SDK)."""
    extra = obj.model_extra or {}
    value = extra.get("reasoning") or extra.get("reasoning_content")
    return value if isinstance(value, str) else None


async def test_the_sdk_streams_reasoning_content_and_usage(target: Target) -> None:
    """Streaming with the SDK yields reasoning then content, a finish reason and usage that
    counts at least one token per visible delta."""
    async with client(target) as sdk:
        stream = await sdk.chat.completions.create(
            model=target.model,
            messages=[{"role": "user", "content": "Say hello in five words."}],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"reasoning_effort": "low"},
        )
        reasoning, content, finish, usage, deltas = "", "", None, None, 0
        async for chunk in stream:
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                piece = reasoning_of(choice.delta)
                reasoning += piece or ""
                content += choice.delta.content or ""
                deltas += bool(piece) or bool(choice.delta.content)
                finish = choice.finish_reason or finish
    assert reasoning
    assert content
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens >= deltas
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_the_sdk_reads_a_non_streamed_reply(target: Target) -> None:
    """A non-streamed reply parses, with reasoning reachable and usage."""
    async with client(target) as sdk:
        reply = await sdk.chat.completions.create(
            model=target.model,
            messages=[{"role": "user", "content": "Say hello."}],
            extra_body={"reasoning_effort": "low"},
        )
    message = reply.choices[0].message
    assert message.content
    assert reasoning_of(message)
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0


async def test_the_sdks_stream_helper_assembles_tool_calls(target: Target) -> None:
    """``chat.completions.stream`` assembles the streamed tool call into a complete one."""
    async with (
        client(target) as sdk,
        sdk.chat.completions.stream(
            model=target.model,
            messages=[
                {"role": "user", "content": "What is the weather in Paris? Use get_weather."}
            ],
            tools=[WEATHER_TOOL],
            tool_choice="required",
            extra_body={"reasoning_effort": "low"},
        ) as stream,
    ):
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert len(calls) == 1
    call = calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.id.startswith("chatcmpl-tool-")
    assert "city" in json.loads(call.function.arguments)


async def test_the_sdk_reads_a_non_streamed_tool_call(target: Target) -> None:
    """A non-streamed tool call has an id, the name and JSON arguments."""
    from openai.types.chat import ChatCompletionMessageFunctionToolCall

    async with client(target) as sdk:
        reply = await sdk.chat.completions.create(
            model=target.model,
            messages=[
                {"role": "user", "content": "What is the weather in Paris? Use get_weather."}
            ],
            tools=[WEATHER_TOOL],
            tool_choice="required",
        )
    calls = reply.choices[0].message.tool_calls or []
    assert reply.choices[0].finish_reason == "tool_calls"
    assert isinstance(calls[0], ChatCompletionMessageFunctionToolCall)
    assert calls[0].function.name == "get_weather"
    assert "city" in json.loads(calls[0].function.arguments)


async def test_the_sdk_maps_a_missing_key_to_its_authentication_error(target: Target) -> None:
    """Without the key the SDK raises AuthenticationError (401)."""
    import openai

    if not target.api_key:
        pytest.skip("the target needs no API key")
    sdk = openai.AsyncOpenAI(
        base_url=target.base_url + "/v1",
        api_key="wrong",
        default_headers=target.proxy_headers,  # past the proxy, so vLLM itself refuses the key
        max_retries=0,
    )
    async with sdk:
        with pytest.raises(openai.AuthenticationError):
            await sdk.models.list()


async def test_the_sdk_lists_the_served_models(target: Target) -> None:
    """``models.list`` returns the served names, each with max_model_len."""
    async with client(target) as sdk:
        models = [m async for m in sdk.models.list()]
    assert target.model in [m.id for m in models]
    assert all((m.model_extra or {}).get("max_model_len") for m in models)


@pytest.mark.mock_only
async def test_the_sdk_consumes_every_mock_stream_shape(start_mock: Any) -> None:
    """Every stream shape the mock makes (intervals, spec decode, length, hidden reasoning,
    continuous usage, the newer reasoning shape) is consumed by the SDK without error, and the
    SDK's texts equal the raw deltas' texts."""
    import openai

    shapes: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({}, {}),
        ({"stream_interval": 20}, {}),
        ({"num_speculative_tokens": 3, "stream_interval": 4}, {}),
        ({}, {"max_tokens": 30}),
        ({}, {"include_reasoning": False}),
        ({"reasoning_shape": "v0.16"}, {}),
        ({}, {"stream_options": {"include_usage": True, "continuous_usage_stats": True}}),
    ]
    for fields, extra in shapes:
        server = await start_mock(content_tokens=16, **fields)
        sdk = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
        async with sdk:
            stream = await sdk.chat.completions.create(
                model="llm",
                messages=[{"role": "user", "content": "hello"}],
                stream=True,
                extra_body=extra,
            )
            chunks = [chunk async for chunk in stream]
        assert chunks
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert finishes[-1] in ("stop", "length")
