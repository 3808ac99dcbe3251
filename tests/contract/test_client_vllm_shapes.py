"""The chunks our tests replay are vLLM 0.13.0's own, and the client reads vLLM's streams right,
each supported version's own app's streams included.

vLLM's protocol classes build the events (``vllm_ops_stream.py``, through the oracle); these
tests check the literal samples and the unit tests' renderer against them, then replay vLLM's
own events through a real server to the client.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings

from gptoss_modal import (
    ChatChunk,
    ChatResult,
    ServerSentEvent,
    UpstreamError,
    build_chat_request,
    parse_chat_chunk,
)
from gptoss_modal.serve.options import VLLM_VERSIONS, VllmVersion
from gptoss_modal.stream.client import Client
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM
from tests.contract._oracle import VllmOracle
from tests.contract.conftest import OracleFor
from tests.strategies_stream import (
    VLLM_CONTENT,
    VLLM_ERROR,
    VLLM_FINISH_WITH_TEXT,
    VLLM_REASONING,
    VLLM_ROLE,
    VLLM_TOOL_ARGS,
    VLLM_TOOL_START,
    VLLM_USAGE,
    ReplayServer,
    Reply,
    delta_scripts,
    render_vllm_chunk,
)

pytestmark = pytest.mark.vllm

TOOL_START = {"tool_start": {"index": 0, "id": "chatcmpl-tool-abc", "name": "get_weather"}}
TOOL_ARGS = {"tool_args": {"index": 0, "arguments": '{"city": "Paris"}'}}


def vllm_events(vllm: VllmOracle, steps: list[dict[str, Any]], **options: Any) -> list[str]:
    """The SSE events vLLM 0.13.0 writes for these steps (usage and [DONE] included)."""
    answer = vllm.call("stream_events", steps=steps, **options)
    assert answer["ok"], answer
    events: list[str] = answer["events"]
    return events


async def replay(events: list[str], **options: Any) -> ChatResult:
    """Serve the events from a real server, one per write, and read them with the client."""
    async with (
        ReplayServer(Reply([e.encode() for e in events])) as server,
        Client(server.url) as client,
    ):
        return await client.chat("hi", **options)


def data(event: str) -> str:
    assert event.startswith("data: ")
    assert event.endswith("\n\n")
    return event[len("data: ") : -2]


@pytest.mark.parametrize(
    ("steps", "sample"),
    [
        ([{"role": "assistant"}], VLLM_ROLE),
        ([{"reasoning": "Let me think"}], VLLM_REASONING),
        ([{"content": "Hello"}], VLLM_CONTENT),
        ([TOOL_START], VLLM_TOOL_START),
        ([TOOL_ARGS], VLLM_TOOL_ARGS),
        ([{"finish": "stop", "content": " world."}], VLLM_FINISH_WITH_TEXT),
    ],
)
def test_literal_samples_are_byte_for_byte_what_vllm_writes(
    vllm: VllmOracle, steps: list[dict[str, Any]], sample: str
) -> None:
    """Each sample the unit tests parse is exactly the event vLLM 0.13.0 serialises."""
    first, *_ = vllm_events(vllm, steps, include_usage=False)
    assert data(first) == sample


def test_usage_and_error_samples_are_what_vllm_writes(vllm: VllmOracle) -> None:
    """The usage chunk (exclude_none) and the json.dumps-spaced error event match vLLM."""
    *_, usage, done = vllm_events(vllm, [{"content": "x", "tokens": 8}], prompt_tokens=12)
    assert (data(usage), done) == (VLLM_USAGE, "data: [DONE]\n\n")
    error = {"message": "the engine died", "type": "InternalServerError", "code": 500}
    assert vllm_events(vllm, [{"error": error}]) == [
        f"data: {VLLM_ERROR}\n\n",
        "data: [DONE]\n\n",
    ]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=delta_scripts())
def test_renderer_writes_what_vllm_writes(vllm: VllmOracle, script: list[dict[str, Any]]) -> None:
    """For any generated script, the unit tests' renderer gives vLLM's exact event text, so
    the accumulator properties run on vLLM's shapes."""
    events = vllm_events(vllm, script, include_usage=False)[:-1]
    assert [data(e) for e in events] == [render_vllm_chunk(step) for step in script]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=delta_scripts())
def test_every_vllm_chunk_parses(vllm: VllmOracle, script: list[dict[str, Any]]) -> None:
    """Every event vLLM builds for a script parses to a chunk, ending with the end marker."""
    events = vllm_events(vllm, script, continuous_usage=True, prompt_tokens=5)
    parsed = [parse_chat_chunk(ServerSentEvent(data(e))) for e in events]
    assert all(isinstance(c, ChatChunk) for c in parsed[:-1])
    assert parsed[-1] is not None
    assert not isinstance(parsed[-1], ChatChunk)


async def test_vllm_reasoning_then_content_stream_through_the_client(vllm: VllmOracle) -> None:
    """vLLM's own events for a reasoning-then-content answer, with continuous usage and the
    interval batching's finishing chunk, come out of the client as the right message, with a
    per-chunk token count that adds up to the usage."""
    steps: list[dict[str, Any]] = [
        {"role": "assistant"},
        {"reasoning": "The user", "tokens": 2},
        {"reasoning": " says hi.", "tokens": 3},
        {"content": "Hello", "tokens": 1},
        {"finish": "stop", "content": " there!", "tokens": 2},
    ]
    events = vllm_events(vllm, steps, continuous_usage=True, prompt_tokens=20)
    result = await replay(events, continuous_usage=True)
    assert (result.reasoning, result.content) == ("The user says hi.", "Hello there!")
    assert result.finish_reason == "stop"
    assert result.chunk_tokens() == [0, 2, 3, 1, 2, 0]
    assert result.completion_tokens == 8
    assert result.usage is not None
    assert result.usage.prompt_tokens == 20


async def test_vllm_tool_call_stream_through_the_client(vllm: VllmOracle) -> None:
    """vLLM's tool-call events for two calls assemble into two complete calls."""
    steps: list[dict[str, Any]] = [
        {"role": "assistant"},
        {"reasoning": "Need weather."},
        {"tool_start": {"index": 0, "id": "chatcmpl-tool-1", "name": "get_weather"}},
        {"tool_args": {"index": 0, "arguments": '{"city": '}},
        {"tool_args": {"index": 0, "arguments": '"Paris"}'}},
        {"tool_start": {"index": 1, "id": "chatcmpl-tool-2", "name": "get_time"}},
        {"tool_args": {"index": 1, "arguments": '{"tz": "CET"}'}},
        {"finish": "tool_calls"},
    ]
    events = vllm_events(vllm, steps)
    result = await replay(events)
    calls = result.message.tool_calls
    assert [(c.id, c.name, c.parsed_arguments()) for c in calls] == [
        ("chatcmpl-tool-1", "get_weather", {"city": "Paris"}),
        ("chatcmpl-tool-2", "get_time", {"tz": "CET"}),
    ]
    assert result.finish_reason == "tool_calls"


async def test_vllm_error_event_mid_stream_through_the_client(vllm: VllmOracle) -> None:
    """vLLM's error event after some text raises UpstreamError with vLLM's message and code,
    keeping the text."""
    steps: list[dict[str, Any]] = [
        {"role": "assistant"},
        {"content": "Par"},
        {"error": {"message": "Internal server error", "type": "InternalServerError", "code": 500}},
    ]
    events = vllm_events(vllm, steps)
    with pytest.raises(UpstreamError) as caught:
        await replay(events)
    assert (caught.value.message, caught.value.code) == ("Internal server error", 500)
    assert caught.value.partial is not None
    assert caught.value.partial.content == "Par"


# --- each version's own app: its real stream through the client ----------------------------

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
APP_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "reasoning-then-content": ({"stream_interval": 4}, {"reasoning_effort": "low"}),
    "continuous-usage": ({}, {"reasoning_effort": "low", "continuous_usage": True}),
    "tool-call": ({"stream_interval": 3}, {"tools": [WEATHER]}),
}


def _version(name: str) -> VllmVersion:
    return next(v for v in VLLM_VERSIONS if v == name)


@pytest.fixture(params=VLLM_VERSIONS)
def vllm_app(request: pytest.FixtureRequest, vllm_oracle_for: OracleFor) -> VllmOracle:
    """Each supported version's oracle, whose own FastAPI app streams the replies."""
    version: str = request.param
    return vllm_oracle_for(version)


@pytest.mark.parametrize("case", sorted(APP_CASES))
async def test_each_versions_own_stream_reads_as_the_mocks(vllm_app: VllmOracle, case: str) -> None:
    """The stream that version's own app sends for the mock's engine tokens, replayed to the
    client, reads as the client reads the mock in that version's mode: the same message,
    finish, usage and per-chunk token counts."""
    fields, options = APP_CASES[case]
    version = vllm_app.version
    prompt = "What is the weather in Paris? Use get_weather."
    config = MockConfig(content_tokens=16, vllm_version=_version(version), **fields)
    body = build_chat_request(prompt, vllm_version=version, **options)
    async with MockVLLM(config) as server, Client(server.url) as client:
        direct = await client.chat(prompt, vllm_version=version, **options)
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                server.url + "/v1/chat/completions", json=body, headers={"X-Request-Id": "app"}
            ) as response,
        ):
            await response.read()
        script = server.engine_script("chatcmpl-app")
    argv = ["vllm", "serve", config.model, "--served-model-name", *config.served_model_names]
    argv += ["--max-model-len", str(config.max_model_len)]
    argv += ["--stream-interval", str(config.stream_interval)]
    argv += ["--tool-call-parser", "openai", "--enable-auto-tool-choice"]
    answer = vllm_app.call(
        "vllm_http",
        argv=argv,
        method="POST",
        path="/v1/chat/completions",
        headers={"Content-Type": "application/json"},
        body=json.dumps(body),
        script=script,
        system_fingerprint=config.fingerprint,
    )
    assert answer["ok"], answer
    assert answer["status"] == 200, answer
    events = [e + "\n\n" for e in answer["body"].split("\n\n") if e]
    replayed = await replay(events, vllm_version=version, **options)
    assert (replayed.reasoning, replayed.content) == (direct.reasoning, direct.content)
    calls = [(c.name, c.arguments) for c in replayed.message.tool_calls]
    assert calls == [(c.name, c.arguments) for c in direct.message.tool_calls]  # ids are random
    assert (replayed.finish_reason, replayed.usage) == (direct.finish_reason, direct.usage)
    assert replayed.chunk_tokens() == direct.chunk_tokens()
    assert replayed.content or replayed.message.tool_calls
