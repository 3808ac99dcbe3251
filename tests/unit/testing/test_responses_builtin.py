"""Built-in tools on the mock's Responses endpoint: each version's event sequence for a web
search and a code-interpreter call, then the answer turn; without a tool server the tool is
ignored, as vLLM leaves it out of the prompt."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.options import VLLM_VERSIONS, VllmVersion
from gptoss_modal.testing._responses_builtin import requested_turn
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

SEARCH = {"type": "web_search_preview"}
CODE = {"type": "code_interpreter", "container": {"type": "auto"}}
SEARCH_EVENTS = [
    "response.output_item.added",
    "response.web_search_call.in_progress",
    "response.web_search_call.searching",
    "response.web_search_call.completed",
    "response.output_item.done",
]


async def stream(server: MockVLLM, tool: dict[str, Any]) -> list[dict[str, Any]]:
    """The events of one streamed request asking for ``tool``."""
    body = {"model": "llm", "input": "Look up the Alps.", "tools": [tool], "stream": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/v1/responses", json=body) as reply,
    ):
        data = await reply.read()
    return [json.loads(b.partition(b"\ndata: ")[2]) for b in data.split(b"\n\n") if b]


def demo(version: VllmVersion) -> MockConfig:
    """A mock with the demo tool server, in ``version``'s mode."""
    return MockConfig(vllm_version=version, content_tokens=6, tool_server="demo")


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_a_web_search_streams_each_version_s_events_then_the_answer(
    version: VllmVersion,
) -> None:
    """0.13.0: the five web-search events; 0.33.0: the MCP-call events of the arguments first
    (vLLM's own quirk), then the same five; all at output index 0, the answer's items after;
    the final output starts with the ``web_search_call`` (query ``cursor:``-prefixed)."""
    async with MockVLLM(demo(version)) as server:
        events = await stream(server, SEARCH)
    kinds = [e["type"] for e in events]
    first_answer = next(i for i, e in enumerate(events) if e.get("output_index", 0) >= 1)
    tool = kinds[2:first_answer]
    if version == "0.13.0":
        assert tool == SEARCH_EVENTS
    else:
        assert tool[:2] == ["response.output_item.added", "response.mcp_call.in_progress"]
        assert tool[-8:] == [
            "response.mcp_call_arguments.done",
            "response.mcp_call.completed",
            "response.output_item.done",
            *SEARCH_EVENTS,
        ]
        deltas = [e["delta"] for e in events if e["type"] == "response.mcp_call_arguments.delta"]
        done = next(e for e in events if e["type"] == "response.mcp_call_arguments.done")
        assert "".join(deltas) == done["arguments"]
        assert json.loads(done["arguments"])["query"] == "Look up the Alps."
    assert {e["output_index"] for e in events[2:first_answer]} == {0}
    assert events[first_answer]["item"]["type"] == "reasoning"  # the answer turn's first item
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    output = events[-1]["response"]["output"]
    assert output[0]["type"] == "web_search_call"
    assert output[0]["action"]["query"] == "cursor:Look up the Alps."
    assert output[-1]["type"] == "message"


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_code_interpreter_streams_the_code_then_the_answer(version: VllmVersion) -> None:
    """The code deltas add up to the done event's code; interpreting, completed and the done
    item follow; the final output has the code as a reasoning item, then the answer."""
    async with MockVLLM(demo(version)) as server:
        events = await stream(server, CODE)
    kinds = [e["type"] for e in events]
    deltas = [
        e["delta"] for e in events if e["type"] == "response.code_interpreter_call_code.delta"
    ]
    done = next(e for e in events if e["type"] == "response.code_interpreter_call_code.done")
    assert "".join(deltas) == done["code"]
    at = kinds.index("response.code_interpreter_call_code.done")
    assert kinds[at + 1 : at + 4] == [
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        "response.output_item.done",
    ]
    assert events[at + 3]["item"]["code"] == done["code"]
    output = events[-1]["response"]["output"]
    assert (output[0]["type"], output[0]["content"][0]["text"]) == ("reasoning", done["code"])
    assert output[-1]["type"] == "message"


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_without_a_tool_server_the_built_in_tool_is_ignored(version: VllmVersion) -> None:
    """No tool server: no tool events at all, and the same kinds of events as a request
    without the tool."""
    async with MockVLLM(MockConfig(vllm_version=version, content_tokens=6)) as server:
        with_tool = await stream(server, SEARCH)
    assert not any("web_search" in e["type"] or "mcp" in e["type"] for e in with_tool)
    assert [i["type"] for i in with_tool[-1]["response"]["output"]] == ["reasoning", "message"]


def test_the_turn_is_the_first_built_in_tool_asked_for() -> None:
    """A function tool is not a built-in; the first built-in asked for wins; none without a
    tool server."""
    function = {"type": "function", "name": "f"}
    turn = requested_turn([function, CODE, SEARCH], "demo", "hi")
    assert turn is not None
    assert turn.recipient == "python"
    assert requested_turn([function], "demo", "hi") is None
    assert requested_turn([SEARCH], None, "hi") is None


def test_an_unknown_tool_server_is_a_config_error_naming_the_field() -> None:
    """Only ``demo`` (or none) is played."""
    with pytest.raises(ConfigError, match="tool_server"):
        MockConfig(tool_server="mcp:8000")
