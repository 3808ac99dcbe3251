"""The mock's bytes against each vLLM version's own FastAPI app serving the same engine tokens.

Every test runs once per supported version (0.13.0 and 0.33.0): the mock in that version's
mode against that version's app, in that version's venv.

For each request the mock answers, the oracle (``vllm_ops_mock.py``) builds vLLM's real app from
the equivalent ``vllm serve`` argv and replays the tokens the mock's pretend engine generated,
step by step; then the two replies must be identical, byte for byte, once the values that are
random or time-dependent in vLLM too (``created``, tool-call and permission ids) are masked.
Every streamed chunk is also validated with vLLM's ``ChatCompletionStreamResponse`` and
re-serialised with ``model_dump_json(exclude_unset=True)`` to the same bytes.
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest

from gptoss_modal.serve.options import VLLM_VERSIONS
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM
from tests.contract._oracle import VllmOracle
from tests.contract.conftest import OracleFor

pytestmark = [pytest.mark.vllm, pytest.mark.mock_only]

_MASKS = (
    (re.compile(rb'"created":\d+'), b'"created":0'),
    (re.compile(rb"chatcmpl-tool-[0-9a-f]{16}"), b"chatcmpl-tool-X"),
    (re.compile(rb"modelperm-[0-9a-f]{16}"), b"modelperm-X"),
)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}


def mask(data: bytes) -> bytes:
    """Hide the values that differ between any two vLLM replies too."""
    for pattern, replacement in _MASKS:
        data = pattern.sub(replacement, data)
    return data


def serve_argv(config: MockConfig) -> list[str]:
    """The ``vllm serve`` argv a deployment equivalent to ``config`` would run."""
    argv = ["vllm", "serve", config.model, "--served-model-name", *config.served_model_names]
    argv += ["--max-model-len", str(config.max_model_len)]
    argv += ["--stream-interval", str(config.stream_interval)]
    if config.tool_parser:
        argv += ["--tool-call-parser", "openai", "--enable-auto-tool-choice"]
    if config.api_keys:
        argv += ["--api-key", *config.api_keys]
    if config.enable_prompt_tokens_details:
        argv += ["--enable-prompt-tokens-details"]
    return argv


@pytest.fixture(params=VLLM_VERSIONS)
def vllm(request: pytest.FixtureRequest, vllm_oracle_for: OracleFor) -> VllmOracle:
    """Each supported version's oracle in turn (every test here runs once per version)."""
    version: str = request.param
    return vllm_oracle_for(version)


@pytest.fixture
def site_packages(vllm: VllmOracle) -> str:
    """Where the oracle's vLLM lives (FastAPI prints it in validation messages)."""
    return str(vllm.call("vllm_site_packages")["path"])


@pytest.fixture
def start_mock(start_mock: Any, vllm: VllmOracle) -> Any:
    """The mock in the oracle's version's mode."""

    async def start(**fields: Any) -> MockVLLM:
        server: MockVLLM = await start_mock(vllm_version=vllm.version, **fields)
        return server

    return start


async def compare(
    vllm: VllmOracle,
    server: MockVLLM,
    body: dict[str, Any] | str,
    *,
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    engine_dead: bool | None = None,
) -> tuple[int, bytes]:
    """Send one request to the mock and the same to vLLM's app; assert identical replies.

    vLLM's engine is dead if the mock's is, or if ``engine_dead`` says so (a per-request fault).
    """
    sent_headers = {"Content-Type": "application/json", "X-Request-Id": "contract"}
    sent_headers.update(headers or {})
    text = body if isinstance(body, str) else json.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, server.url + path, data=text if method == "POST" else None, headers=sent_headers
        ) as response,
    ):
        mock_body = await response.read()
        mock_status = response.status
        mock_type = response.headers.get("Content-Type")
    script = None
    if mock_status == 200 and path == "/v1/chat/completions":
        script = server.engine_script("chatcmpl-contract")
    answer = vllm.call(
        "vllm_http",
        argv=serve_argv(server.config),
        method=method,
        path=path,
        headers=sent_headers,
        body=text if method == "POST" else None,
        script=script,
        engine_dead=server.engine_dead if engine_dead is None else engine_dead,
        system_fingerprint=server.config.fingerprint,
    )
    assert answer["ok"], answer
    assert mock_status == answer["status"]
    assert mask(mock_body).decode() == mask(answer["body"].encode()).decode()
    if answer["headers"].get("content-type"):
        assert mock_type == answer["headers"]["content-type"]
    return mock_status, mock_body


def events(body: bytes) -> list[bytes]:
    """The data of each SSE event of a stream."""
    return [e[len(b"data: ") :] for e in body.split(b"\n\n") if e]


def roundtrip_chunks(vllm: VllmOracle, body: bytes) -> int:
    """Validate each chunk with vLLM's class; it must re-serialise to the same bytes."""
    checked = 0
    for data in events(body):
        if data == b"[DONE]" or data.startswith(b'{"error"'):
            continue
        answer = vllm.roundtrip("ChatCompletionStreamResponse", data)
        assert answer["ok"], answer
        assert answer["dump"].encode() == data
        checked += 1
    return checked


def chat(content: str, **extra: Any) -> dict[str, Any]:
    """A chat request body."""
    return {"model": "llm", "messages": [{"role": "user", "content": content}], **extra}


AGENT_PROMPT = "What is the weather in Paris? Use the tool."
AGENT: dict[str, Any] = {"reasoning_effort": "low", "tools": [WEATHER_TOOL], "tool_choice": "auto"}
AGENT_ANSWER_TURN: dict[str, Any] = {
    "model": "llm",
    "messages": [
        {"role": "user", "content": AGENT_PROMPT},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C in Paris"},
    ],
    **AGENT,
}

STREAM_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "plain": ({}, chat("Say hello", stream=True, reasoning_effort="low")),
    "usage": ({}, chat("Say hello", stream=True, stream_options={"include_usage": True})),
    "usage-off": (
        {},
        chat("Say hello", stream=True, stream_options={"include_usage": False}),
    ),
    "continuous-usage": (
        {"stream_interval": 3},
        chat(
            "Say hello",
            stream=True,
            reasoning_effort="low",
            stream_options={"include_usage": True, "continuous_usage_stats": True},
        ),
    ),
    "interval-4": ({"stream_interval": 4}, chat("Explain streams", stream=True)),
    "interval-20": ({"stream_interval": 20}, chat("Explain streams", stream=True)),
    "hide-reasoning": ({}, chat("Be brief", stream=True, include_reasoning=False)),
    "length-in-reasoning": ({}, chat("Think", stream=True, max_tokens=10)),
    "length-in-content": (
        {"stream_interval": 5},
        chat("Answer", stream=True, reasoning_effort="low", max_tokens=60),
    ),
    "ignore-eos": (
        {"stream_interval": 7},
        chat("Go on", stream=True, reasoning_effort="low", ignore_eos=True, max_tokens=90),
    ),
    "tool-call": (
        {},
        chat(
            "What is the weather in Paris? Use get_weather.",
            stream=True,
            reasoning_effort="low",
            tools=[WEATHER_TOOL],
        ),
    ),
    "tool-call-length": (  # max_tokens is reached inside the call's arguments (vllm#37937)
        {},
        chat(
            "What is the weather in Paris? Use get_weather.",
            stream=True,
            reasoning_effort="low",
            tools=[WEATHER_TOOL],
            max_tokens=44,
        ),
    ),
    "tool-call-interval-3": (
        {"stream_interval": 3},
        chat("Call get_weather for Oslo", stream=True, tools=[WEATHER_TOOL]),
    ),
    "spec-decode": (
        {"num_speculative_tokens": 3, "spec_acceptance_rate": 0.6},
        chat("Speculate", stream=True, reasoning_effort="low"),
    ),
    "spec-decode-interval-4": (
        {"num_speculative_tokens": 3, "spec_acceptance_rate": 0.8, "stream_interval": 4},
        chat(
            "Speculate",
            stream=True,
            stream_options={"include_usage": True, "continuous_usage_stats": True},
        ),
    ),
    # The agent loop (issue #14): auto calls on a user turn, answers a tool result.
    "agent-user-turn": ({}, chat(AGENT_PROMPT, stream=True, **AGENT)),
    "agent-tool-result": ({}, {**AGENT_ANSWER_TURN, "stream": True}),
    # Tool-call faults whose bytes are vLLM's for the same tokens.
    "fault-args-short": ({"tool_args_short_rate": 1.0}, chat(AGENT_PROMPT, stream=True, **AGENT)),
    "fault-args-length": (
        {"tool_args_length_rate": 1.0},
        chat(AGENT_PROMPT, stream=True, **AGENT),
    ),
    "fault-content-leak": (
        {"tool_content_leak_rate": 1.0},
        chat(AGENT_PROMPT, stream=True, **AGENT),
    ),
}


@pytest.mark.parametrize("case", sorted(STREAM_CASES))
async def test_streams_match_vllm_byte_for_byte(
    vllm: VllmOracle, start_mock: Any, site_packages: str, case: str
) -> None:
    """Each streamed reply is that vLLM version's, byte for byte, and every chunk round-trips."""
    fields, body = STREAM_CASES[case]
    server = await start_mock(content_tokens=20, site_packages=site_packages, **fields)
    status, reply = await compare(vllm, server, body)
    assert status == 200
    assert reply.endswith(b"data: [DONE]\n\n")
    assert roundtrip_chunks(vllm, reply) >= 2


REPLY_CASES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "plain": ({}, chat("Say hello", reasoning_effort="low")),
    "hide-reasoning": ({}, chat("Say hello", include_reasoning=False)),
    "length": ({}, chat("Say hello", reasoning_effort="low", max_tokens=40)),
    "tool-call": ({}, chat("Weather in Rome? get_weather please", tools=[WEATHER_TOOL])),
    "tool-call-without-parser": (
        {"tool_parser": False},
        chat("Weather in Rome? get_weather please", tools=[WEATHER_TOOL]),
    ),
    "agent-user-turn": ({}, chat(AGENT_PROMPT, **AGENT)),
    "agent-tool-result": ({}, AGENT_ANSWER_TURN),
    "fault-args-short": ({"tool_args_short_rate": 1.0}, chat(AGENT_PROMPT, **AGENT)),
    "fault-args-length": ({"tool_args_length_rate": 1.0}, chat(AGENT_PROMPT, **AGENT)),
    "fault-content-leak": ({"tool_content_leak_rate": 1.0}, chat(AGENT_PROMPT, **AGENT)),
    "length-without-parser": (
        {"tool_parser": False},
        chat("Say hello", reasoning_effort="low", max_tokens=40),
    ),
}


@pytest.mark.parametrize("case", sorted(REPLY_CASES))
async def test_non_streamed_replies_match_vllm(
    vllm: VllmOracle, start_mock: Any, site_packages: str, case: str
) -> None:
    """Each non-streamed reply is that vLLM version's JSON, byte for byte."""
    fields, body = REPLY_CASES[case]
    server = await start_mock(content_tokens=20, site_packages=site_packages, **fields)
    status, reply = await compare(vllm, server, body)
    assert status == 200
    assert vllm.roundtrip("ChatCompletionResponse", reply)["ok"]


ERROR_CASES: dict[str, tuple[dict[str, Any], dict[str, Any] | str, dict[str, str]]] = {
    "wrong-content-type": ({}, chat("hi"), {"Content-Type": "text/plain"}),
    "invalid-json": ({}, "{not json", {}),
    "missing-messages": ({}, {"model": "llm"}, {}),
    "bad-reasoning-effort": ({}, chat("hi", reasoning_effort="max"), {}),  # 0.33.0: harmony's
    "unknown-reasoning-effort": ({}, chat("hi", reasoning_effort="bogus"), {}),
    "reasoning-effort-none": ({}, chat("hi", reasoning_effort="none", stream=True), {}),
    "empty-stream-options-without-stream": ({}, chat("hi", stream_options={}), {}),
    "stream-options-without-stream": ({}, chat("hi", stream_options={"include_usage": True}), {}),
    "unknown-model": ({}, {"model": "gpt-5", "messages": []}, {}),
    "missing-key": ({"api_keys": ("sk-a",)}, chat("hi"), {}),
    "wrong-key": ({"api_keys": ("sk-a",)}, chat("hi"), {"Authorization": "Bearer sk-b"}),
    "right-key": ({"api_keys": ("sk-a",)}, chat("hi"), {"Authorization": "Bearer sk-a"}),
}


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
async def test_request_errors_match_vllm(
    vllm: VllmOracle, start_mock: Any, site_packages: str, case: str
) -> None:
    """Refused requests get vLLM's status, content type and error body, byte for byte."""
    fields, body, headers = ERROR_CASES[case]
    server = await start_mock(site_packages=site_packages, **fields)
    await compare(vllm, server, body, headers=headers)


@pytest.mark.parametrize("path", ["/health", "/version", "/v1/models"])
async def test_simple_endpoints_match_vllm(
    vllm: VllmOracle, start_mock: Any, site_packages: str, path: str
) -> None:
    """``/health``, ``/version`` and ``/v1/models`` answer as vLLM's app does."""
    server = await start_mock(site_packages=site_packages, max_model_len=8192)
    await compare(vllm, server, "", path=path, method="GET")


async def test_a_dead_engine_fails_as_vllm_does(
    vllm: VllmOracle, start_mock: Any, site_packages: str
) -> None:
    """With the engine dead, ``/health`` is 503 and a chat request is vLLM's 500."""
    server = await start_mock(site_packages=site_packages)
    server.set_engine_dead()
    await compare(vllm, server, "", path="/health", method="GET")
    status, _ = await compare(vllm, server, chat("hi", stream=True))
    assert status == 500


@pytest.mark.parametrize("stream", [True, False])
async def test_a_per_request_dead_fault_fails_as_vllm_does(
    vllm: VllmOracle, start_mock: Any, site_packages: str, stream: bool
) -> None:
    """Header ``X-Mock-Fault: dead`` gets the reply vLLM's app gives when its engine is dead."""
    server = await start_mock(site_packages=site_packages)
    status, _ = await compare(
        vllm, server, chat("hi", stream=stream), headers={"X-Mock-Fault": "dead"}, engine_dead=True
    )
    assert status == 500
    assert not server.engine_dead


@pytest.mark.parametrize(("code", "kind"), [(500, "InternalServerError"), (400, "BadRequestError")])
async def test_in_stream_errors_use_vllms_json_dumps_text(
    vllm: VllmOracle, start_mock: Any, code: int, kind: str
) -> None:
    """An injected in-stream error is the text that version writes for an error raised while
    generating (0.13.0: ``json.dumps``, spaced; 0.33.0: ``model_dump_json``, compact)."""
    server = await start_mock()
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            server.url + "/v1/chat/completions",
            json=chat("hi", stream=True),
            headers={"X-Mock-Fault": f"error:after=3,code={code},message=boom"},
        ) as response,
    ):
        body = await response.read()
    data = events(body)
    assert data[-1] == b"[DONE]"
    expected = vllm.call("streaming_error", message="boom", type=kind, code=code)["data"]
    assert data[-2].decode() == expected
    assert len(data) == 5  # three chunks, the error, [DONE]
