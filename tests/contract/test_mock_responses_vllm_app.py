"""The mock's ``/v1/responses`` bytes against each vLLM version's own app serving the same tokens.

Every test runs once per supported version (0.13.0 and 0.33.0): the mock in that version's
mode against that version's router and ``OpenAIServingResponses``, in that version's venv
(``vllm_ops_responses_app.py``), the engine replaying the steps the mock's engine generated.
The two replies, streamed and not, must be identical once what is random or time-dependent
in vLLM too is normalised: ``created_at``, and each ``resp_``/``rs_``/``msg_``/``fc_``/
``call_`` id, renamed by order of first appearance (so which events share an id, and each
id's prefix, still has to match).
"""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest

from gptoss_modal.serve.options import VLLM_VERSIONS
from gptoss_modal.testing.mock_server import MockVLLM
from tests.contract._oracle import VllmOracle
from tests.contract._weather import WEATHER
from tests.contract.conftest import OracleFor
from tests.contract.test_mock_vllm_fidelity import serve_argv

pytestmark = [pytest.mark.vllm, pytest.mark.mock_only]

_CREATED = re.compile(r'"created_at":\d+')
_ID = re.compile(r'(?<=":")(resp|rs|msg|fc|call)_[0-9A-Za-z]+(?=")')

CASES: dict[str, dict[str, Any]] = {
    "reasoning and text": {"input": "Say hello.", "reasoning": {"effort": "low"}},
    "function call": {"input": "Use get_weather for Paris.", "tools": [WEATHER]},
    "cut in reasoning": {"input": "Say hello.", "max_output_tokens": 12},
    "cut in text": {"input": "Say hello.", "reasoning": {"effort": "low"}, "max_output_tokens": 40},
    "cut in arguments": {
        "input": "Use get_weather for Paris.",
        "tools": [WEATHER],
        "max_output_tokens": 120,
    },
}


def normalise(text: str) -> str:
    """``created_at`` zeroed; every id renamed ``<prefix>_<n>`` by order of first appearance."""
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        return names.setdefault(match.group(0), f"{match.group(1)}_{len(names)}")

    return _ID.sub(rename, _CREATED.sub('"created_at":0', text))


@pytest.fixture(params=VLLM_VERSIONS)
def vllm(request: pytest.FixtureRequest, vllm_oracle_for: OracleFor) -> VllmOracle:
    """Each supported version's oracle in turn (every test here runs once per version)."""
    version: str = request.param
    return vllm_oracle_for(version)


async def compare(vllm: VllmOracle, server: MockVLLM, body: dict[str, Any]) -> str:
    """Send one ``POST /v1/responses`` to the mock and the same to vLLM's app; assert equal
    status, content type and normalised body; returns the normalised body."""
    headers = {"Content-Type": "application/json", "X-Request-Id": "contract"}
    text = json.dumps(body)
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/v1/responses", data=text, headers=headers) as reply,
    ):
        mock_body = (await reply.read()).decode()
        mock_status, mock_type = reply.status, reply.headers.get("Content-Type")
    answer = vllm.call(
        "responses_http",
        argv=serve_argv(server.config),
        path="/v1/responses",
        headers=headers,
        body=text,
        script=server.engine_script("resp_contract"),
        enable_store=server.config.responses_store,
    )
    assert answer["ok"], answer
    assert (mock_status, mock_type) == (answer["status"], answer["headers"]["content-type"])
    assert normalise(mock_body) == normalise(answer["body"])
    return normalise(mock_body)


@pytest.mark.parametrize("case", list(CASES))
async def test_streams_match_vllm_s_serving_code(
    vllm: VllmOracle, start_mock: Any, case: str
) -> None:
    """Each streamed reply is that vLLM version's, event for event and byte for byte."""
    server = await start_mock(vllm_version=vllm.version, content_tokens=8)
    reply = await compare(vllm, server, {"model": "llm", "stream": True, **CASES[case]})
    kinds = [line for line in reply.split("\n") if line.startswith("event: ")]
    assert kinds[0] == "event: response.created"
    assert kinds[-1] in ("event: response.completed", "event: response.incomplete")


@pytest.mark.parametrize("case", list(CASES))
async def test_replies_match_vllm_s_serving_code(
    vllm: VllmOracle, start_mock: Any, case: str
) -> None:
    """Each non-streamed reply is that vLLM version's ``ResponsesResponse``, byte for byte."""
    server = await start_mock(vllm_version=vllm.version, content_tokens=8)
    reply = json.loads(await compare(vllm, server, {"model": "llm", **CASES[case]}))
    assert reply["object"] == "response"
    assert reply["output"]


def test_normalise_keeps_which_ids_are_shared() -> None:
    """Two streams that differ only in random ids normalise equal; one that reuses an id where
    the other has two does not."""
    one = '{"id":"msg_a1","item_id":"msg_a1","x":"fc_b2"}'
    other = '{"id":"msg_zz","item_id":"msg_zz","x":"fc_q"}'
    split = '{"id":"msg_zz","item_id":"msg_yy","x":"fc_q"}'
    assert normalise(one) == normalise(other)
    assert normalise(one) != normalise(split)
