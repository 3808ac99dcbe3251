"""The mock's tool-call faults and prefix-cache usage against each vLLM version's own code.

Every test runs once per supported version. Each fault's bytes round-trip through that
version's protocol classes (``ChatCompletionStreamResponse`` chunk by chunk, and
``ChatCompletionResponse``); the harmony error is the text that version's error code writes for
a real ``openai_harmony.HarmonyError`` (``vllm_ops_tool_faults.py``); the cached-token usage is
byte for byte what vLLM's app writes for the same hit (``vllm_ops_mock.py`` replays it); and the
openai SDK reads every fault. The faults that only change tokens (cut or short arguments,
markup in the content) are also compared byte for byte with vLLM's app in
``test_mock_vllm_fidelity.py``.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from gptoss_modal.serve.options import VLLM_VERSIONS
from gptoss_modal.testing._tool_faults import TOOL_FAULT_FIELDS, harmony_error_message
from gptoss_modal.testing.mock_server import MockVLLM
from tests.contract._oracle import VllmOracle
from tests.contract.conftest import OracleFor
from tests.contract.test_mock_vllm_fidelity import (
    AGENT,
    AGENT_ANSWER_TURN,
    AGENT_PROMPT,
    chat,
    compare,
    events,
    roundtrip_chunks,
)

pytestmark = [pytest.mark.vllm, pytest.mark.mock_only]

KINDS = {kind: name for name, kind in TOOL_FAULT_FIELDS.items()}  # kind -> MockConfig field
STREAM_USAGE = {"stream": True, "stream_options": {"include_usage": True}}


@pytest.fixture(params=VLLM_VERSIONS)
def vllm(request: pytest.FixtureRequest, vllm_oracle_for: OracleFor) -> VllmOracle:
    """Each supported version's oracle in turn."""
    version: str = request.param
    return vllm_oracle_for(version)


@pytest.fixture
def start_mock(start_mock: Any, vllm: VllmOracle) -> Any:
    """The mock in the oracle's version's mode."""

    async def start(**fields: Any) -> MockVLLM:
        server: MockVLLM = await start_mock(vllm_version=vllm.version, **fields)
        return server

    return start


async def post(server: MockVLLM, body: dict[str, Any]) -> tuple[int, bytes]:
    """One chat request to the mock: its status and body."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/v1/chat/completions", json=body) as response,
    ):
        return response.status, await response.read()


def deltas_of(stream: bytes) -> list[dict[str, Any]]:
    """Every delta of a stream's chunks."""
    chunks = [json.loads(d) for d in events(stream) if d.startswith(b'{"id"')]
    return [choice["delta"] for chunk in chunks for choice in chunk["choices"]]


def tool_calls_of(stream: bytes) -> list[dict[str, Any]]:
    """Every tool-call delta of a stream's chunks."""
    return [call for delta in deltas_of(stream) for call in delta.get("tool_calls") or []]


@pytest.mark.parametrize("kind", sorted(set(KINDS) - {"harmony-error"}))
async def test_each_faults_stream_round_trips_through_vllms_classes(
    vllm: VllmOracle, start_mock: Any, kind: str
) -> None:
    """Each fault's streamed chunks validate with the version's chunk class and re-serialise to
    the same bytes, and the fault is there to see."""
    server = await start_mock(**{KINDS[kind]: 1.0})
    status, body = await post(server, chat(AGENT_PROMPT, **STREAM_USAGE, **AGENT))
    assert status == 200
    assert roundtrip_chunks(vllm, body) >= 3
    calls = tool_calls_of(body)
    names = [c["function"]["name"] for c in calls if "name" in c.get("function", {})]
    arguments = "".join(c["function"].get("arguments", "") for c in calls)
    if kind == "name-leak":
        assert names == ["get_weather<|channel|>commentary"]
    elif kind == "content-leak":
        assert not calls
        content = "".join(delta.get("content") or "" for delta in deltas_of(body))
        assert content.startswith("to=functions.get_weather <|constrain|>json{")
    elif kind == "args-short":
        assert names == ["get_weather"]
        assert b'"finish_reason":"tool_calls"' in body
        with pytest.raises(json.JSONDecodeError):
            json.loads(arguments)
    else:  # args-length: 0.13.0 ends in its list-index error, 0.33.0 finishes with "length"
        ending = b"list index out of range" if vllm.version == "0.13.0" else b'"length"'
        assert ending in body
    assert server.tool_faults_applied == {kind: 1}


@pytest.mark.parametrize("kind", sorted(set(KINDS) - {"harmony-error"}))
async def test_each_faults_reply_round_trips_through_vllms_class(
    vllm: VllmOracle, start_mock: Any, kind: str
) -> None:
    """Each fault's non-streamed reply validates with the version's response class."""
    server = await start_mock(**{KINDS[kind]: 1.0})
    status, body = await post(server, chat(AGENT_PROMPT, **AGENT))
    assert status == 200
    assert vllm.roundtrip("ChatCompletionResponse", body)["ok"]
    message = json.loads(body)["choices"][0]["message"]
    if kind == "name-leak":
        assert message["tool_calls"][0]["function"]["name"] == "get_weather<|channel|>commentary"
    if kind == "content-leak":
        assert "<|constrain|>json" in message["content"]


async def test_a_harmony_error_is_what_vllm_writes_for_one(
    vllm: VllmOracle, start_mock: Any
) -> None:
    """A harmony error ends the stream with the version's event for a real HarmonyError (then
    [DONE]), after chunks that round-trip; non-streamed, it is the version's 500."""
    server = await start_mock(harmony_error_rate=1.0)
    expected = vllm.call("harmony_error", message=harmony_error_message("get_weather"))
    status, body = await post(server, chat(AGENT_PROMPT, **STREAM_USAGE, **AGENT))
    data = events(body)
    assert status == 200
    assert data[-1] == b"[DONE]"
    assert data[-2].decode() == expected["data"]
    assert roundtrip_chunks(vllm, body) >= 2  # the role chunk and reasoning came first
    assert not tool_calls_of(body)
    status, body = await post(server, chat(AGENT_PROMPT, **AGENT))
    assert (status, body.decode()) == (expected["status"], expected["body"])
    assert server.tool_faults_applied == {"harmony-error": 2}


async def test_cached_tokens_match_vllms_usage_bytes(vllm: VllmOracle, start_mock: Any) -> None:
    """With prompt-token details on, the next turn of a conversation reports the previous
    turn's blocks as cached, in the bytes vLLM's app writes for that hit (stream and reply)."""
    server = await start_mock(enable_prompt_tokens_details=True, content_tokens=20)
    await post(server, chat(AGENT_PROMPT, **AGENT))  # the first turn fills the cache
    status, reply = await compare(vllm, server, AGENT_ANSWER_TURN)
    usage = json.loads(reply)["usage"]
    cached = usage["prompt_tokens_details"]["cached_tokens"]
    assert status == 200
    assert cached > 0
    assert cached % 16 == 0
    assert cached < usage["prompt_tokens"]
    _, streamed = await compare(vllm, server, {**AGENT_ANSWER_TURN, **STREAM_USAGE})
    last_usage = json.loads(events(streamed)[-2])["usage"]
    assert last_usage["prompt_tokens_details"]["cached_tokens"] >= cached  # seen twice now
    created = usage["prompt_tokens_details"].get("created_cache_tokens", 0)
    expected = vllm.call(
        "prompt_tokens_details", cached_tokens=cached, created_cache_tokens=created
    )
    assert usage["prompt_tokens_details"] == expected["details"]


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_the_openai_sdk_reads_each_fault(start_mock: Any, kind: str) -> None:
    """The openai SDK consumes each fault: a stream it iterates (or, for a harmony error, an
    APIError it raises mid-stream), and a reply it parses (or its 500 as InternalServerError)."""
    import openai  # here, not at collection: the SDK takes ~0.7 s to import

    server = await start_mock(**{KINDS[kind]: 1.0}, enable_prompt_tokens_details=True)
    sdk = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="none", max_retries=0)
    request: dict[str, Any] = {
        "model": "llm",
        "messages": [{"role": "user", "content": AGENT_PROMPT}],
        "tools": AGENT["tools"],
        "tool_choice": "auto",
    }
    async with sdk:
        if kind == "args-length" and server.config.vllm_version == "0.13.0":
            with pytest.raises(openai.APIError, match="list index out of range"):  # vllm#37937
                async for _ in await sdk.chat.completions.create(**request, stream=True):
                    pass
            reply = await sdk.chat.completions.create(**request)
            assert reply.choices[0].finish_reason == "length"
            return
        if kind == "harmony-error":
            with pytest.raises(openai.APIError, match="unexpected tokens remaining"):
                async for _ in await sdk.chat.completions.create(**request, stream=True):
                    pass
            with pytest.raises(openai.InternalServerError):
                await sdk.chat.completions.create(**request)
            return
        chunks = [c async for c in await sdk.chat.completions.create(**request, stream=True)]
        reply = await sdk.chat.completions.create(**request)
    assert chunks[-1].choices[0].finish_reason in ("tool_calls", "length", "stop")
    assert reply.choices[0].finish_reason in ("tool_calls", "length", "stop")
