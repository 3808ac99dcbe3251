"""The mock's Responses bytes against each vLLM version's own classes and serialisation.

Every test runs once per supported version, the mock in that version's mode: each event the
mock writes (reasoning and text, a function call, a ``max_output_tokens`` cut, an injected
error) must validate with that version's ``StreamingResponsesResponse`` union (its error with
vLLM's ``ErrorResponse``), and re-serialise, as that version's router writes it, to exactly the
mock's bytes; the same for the non-streamed reply with ``ResponsesResponse``.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from gptoss_modal.serve.options import VLLM_VERSIONS
from gptoss_modal.testing.mock_server import MockVLLM
from tests.contract._oracle import VllmOracle
from tests.contract._weather import WEATHER
from tests.contract.conftest import OracleFor

pytestmark = [pytest.mark.vllm, pytest.mark.mock_only]

SCENARIOS: dict[str, dict[str, Any]] = {
    "reasoning and text": {"input": "Say hello.", "reasoning": {"effort": "low"}},
    "function call": {"input": "Use get_weather for Paris.", "tools": [WEATHER]},
    "cut by max_output_tokens": {"input": "Say hello.", "max_output_tokens": 12},
    "instructions and items": {
        "instructions": "Be brief.",
        "input": [{"role": "user", "content": [{"type": "input_text", "text": "Hello"}]}],
    },
}


@pytest.fixture(params=VLLM_VERSIONS)
def vllm(request: pytest.FixtureRequest, vllm_oracle_for: OracleFor) -> VllmOracle:
    """Each supported version's oracle in turn."""
    version: str = request.param
    return vllm_oracle_for(version)


async def post(
    server: MockVLLM, body: dict[str, Any], headers: dict[str, str] | None = None
) -> bytes:
    """The mock's reply body to one ``POST /v1/responses``."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/v1/responses", json=body, headers=headers) as reply,
    ):
        assert reply.status == 200, await reply.text()
        return await reply.read()


def blocks(data: bytes) -> list[str]:
    """The stream's events, one ``event:``/``data:`` block each."""
    return [b for b in data.decode().split("\n\n") if b]


def check_round_trip(vllm: VllmOracle, events: list[str], body: str | None = None) -> list[str]:
    """Every block validates and re-serialises to its own data; returns the classes."""
    answer = vllm.call("responses_validate", events=events, body=body)
    assert answer["ok"], answer
    classes = []
    for block, result in zip(events, answer["events"], strict=True):
        assert result["ok"], (block, result)
        assert result["json"] == block.partition("\ndata: ")[2], result["cls"]
        classes.append(result["cls"])
    if body is not None:
        assert answer["body"]["ok"], answer["body"]
        assert answer["body"]["json"] == body
    return classes


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_every_streamed_event_is_vllm_s_own(
    vllm: VllmOracle, start_mock: Any, name: str
) -> None:
    """Each event of each scenario validates as that version's class and re-serialises to the
    mock's exact bytes; numbered from 0; one terminal event, last."""
    server = await start_mock(vllm_version=vllm.version, content_tokens=8)
    data = await post(server, {"model": "llm", "stream": True, **SCENARIOS[name]})
    events = blocks(data)
    check_round_trip(vllm, events)
    numbers = [json.loads(e.partition("\ndata: ")[2])["sequence_number"] for e in events]
    assert numbers == list(range(len(events)))
    kinds = [e.partition("\n")[0].removeprefix("event: ") for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert "data: [DONE]" not in data.decode()


@pytest.mark.parametrize("name", list(SCENARIOS))
async def test_every_reply_is_vllm_s_own(vllm: VllmOracle, start_mock: Any, name: str) -> None:
    """The non-streamed reply validates as that version's ResponsesResponse and re-serialises
    to the mock's exact bytes."""
    server = await start_mock(vllm_version=vllm.version, content_tokens=8)
    data = await post(server, {"model": "llm", **SCENARIOS[name]})
    check_round_trip(vllm, [], data.decode())


async def test_version_differences(vllm: VllmOracle, start_mock: Any) -> None:
    """0.13.0: reasoning_part events and a completed terminal even when cut; 0.33.0:
    content_part for reasoning and response.incomplete with max_output_tokens' reason."""
    server = await start_mock(vllm_version=vllm.version, content_tokens=8)
    data = await post(
        server, {"model": "llm", "stream": True, **SCENARIOS["cut by max_output_tokens"]}
    )
    events = blocks(data)
    kinds = {e.partition("\n")[0] for e in events}
    last = json.loads(events[-1].partition("\ndata: ")[2])
    if vllm.version == "0.13.0":
        assert "event: response.reasoning_part.added" in kinds
        assert (last["type"], last["response"]["status"]) == ("response.completed", "completed")
    else:
        assert "event: response.reasoning_part.added" not in kinds
        assert last["type"] == "response.incomplete"
        assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_an_error_fault_is_vllm_s_error_payload(vllm: VllmOracle, start_mock: Any) -> None:
    """An ``error`` fault ends the stream with vLLM's ErrorResponse under ``event: error``
    (validated and re-serialised by that version) and no terminal event."""
    server = await start_mock(vllm_version=vllm.version, content_tokens=8)
    headers = {"X-Mock-Fault": "error:after=5,code=500"}
    data = await post(server, {"model": "llm", "stream": True, "input": "hi"}, headers)
    events = blocks(data)
    assert len(events) == 6
    assert events[-1].startswith("event: error\n")
    answer = vllm.call("responses_validate", events=[events[-1]])
    assert answer["events"][0]["ok"], answer
    assert json.loads(answer["events"][0]["json"]) == json.loads(events[-1].partition("data: ")[2])
    check_round_trip(vllm, events[:-1])
