"""The mock's Responses events under tool-call faults, in an agent loop and with the prefix
cache, against each vLLM version's own classes and serialisation (the op of
``vllm_ops_responses_mock.py``)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from gptoss_modal.serve.options import VLLM_VERSIONS
from gptoss_modal.testing._tool_faults import TOOL_FAULT_FIELDS
from gptoss_modal.testing.mock_server import MockVLLM
from tests.contract._oracle import VllmOracle
from tests.contract._weather import WEATHER
from tests.contract.conftest import OracleFor
from tests.contract.test_mock_responses_fidelity import blocks, check_round_trip

pytestmark = [pytest.mark.vllm, pytest.mark.mock_only]

ASK = {"model": "llm", "input": "Use get_weather for Paris.", "tools": [WEATHER]}


@pytest.fixture(params=VLLM_VERSIONS)
def vllm(request: pytest.FixtureRequest, vllm_oracle_for: OracleFor) -> VllmOracle:
    """Each supported version's oracle in turn."""
    version: str = request.param
    return vllm_oracle_for(version)


async def body_of(server: MockVLLM, body: dict[str, Any]) -> bytes:
    """What the mock sends for one request, up to where it stops (a cut stream included)."""
    pieces: list[bytes] = []
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/v1/responses", json=body) as reply,
    ):
        try:
            async for piece in reply.content.iter_any():
                pieces.append(piece)  # noqa: PERF401  (a comprehension loses them on a break)
        except aiohttp.ClientPayloadError:  # 0.13.0's harmony error closes the connection
            pass
    return b"".join(pieces)


@pytest.mark.parametrize("rate_field", list(TOOL_FAULT_FIELDS))
async def test_every_tool_fault_s_events_are_vllm_s_own(
    vllm: VllmOracle, start_mock: Any, rate_field: str
) -> None:
    """Under each tool fault, every streamed event and the non-streamed reply (when 200)
    validate as the version's classes and re-serialise to the mock's bytes."""
    server = await start_mock(vllm_version=vllm.version, content_tokens=8, **{rate_field: 1.0})
    events = blocks(await body_of(server, {**ASK, "stream": True}))
    assert len(events) >= 3
    check_round_trip(vllm, events)
    reply = await body_of(server, ASK)
    if b'"error"' not in reply[:12]:  # 0.13.0's harmony error is a 400 ErrorResponse
        check_round_trip(vllm, [], reply.decode())


async def test_an_agent_loop_s_answer_turn_is_vllm_s_own(vllm: VllmOracle, start_mock: Any) -> None:
    """The turn after a ``function_call_output`` (with its prefix-cache hit in usage)
    validates, streamed and not."""
    server = await start_mock(vllm_version=vllm.version, content_tokens=8)
    call = next(
        i for i in json.loads(await body_of(server, ASK))["output"] if i["type"] == "function_call"
    )
    items = [
        {"role": "user", "content": ASK["input"]},
        {k: call[k] for k in ("type", "call_id", "name", "arguments")},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"},
    ]
    reply = await body_of(server, {**ASK, "input": items})
    assert json.loads(reply)["usage"]["input_tokens_details"]["cached_tokens"] > 0
    check_round_trip(vllm, [], reply.decode())
    check_round_trip(vllm, blocks(await body_of(server, {**ASK, "input": items, "stream": True})))


BUILTIN = {
    "web search": {"type": "web_search_preview"},
    "code interpreter": {"type": "code_interpreter", "container": {"type": "auto"}},
}


@pytest.mark.parametrize("tool", list(BUILTIN.values()), ids=list(BUILTIN))
async def test_every_built_in_tool_event_is_vllm_s_own(
    vllm: VllmOracle, start_mock: Any, tool: dict[str, Any]
) -> None:
    """With ``tool_server="demo"`` a request asking for a built-in tool gets its events (then
    the answer turn); every event and the non-streamed reply validate as the version's classes
    and re-serialise to the mock's bytes."""
    server = await start_mock(vllm_version=vllm.version, content_tokens=8, tool_server="demo")
    body = {"model": "llm", "input": "Look up the Alps.", "tools": [tool]}
    events = blocks(await body_of(server, {**body, "stream": True}))
    kinds = [e.partition("\n")[0].removeprefix("event: ") for e in events]
    family = "web_search_call" if tool["type"] == "web_search_preview" else "code_interpreter_call"
    assert any(k.startswith(f"response.{family}.") for k in kinds), kinds
    check_round_trip(vllm, events)
    check_round_trip(vllm, [], (await body_of(server, body)).decode())
