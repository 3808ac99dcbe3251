"""The mock's Responses API: input items as chat messages, the store and its bound, retrieve
and cancel, auth and model checks, and what each fault does to this API's bytes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gptoss_modal.serve.options import VLLM_VERSIONS, VllmVersion
from gptoss_modal.testing import _responses_input as rinput
from gptoss_modal.testing import _responses_wire as rw
from gptoss_modal.testing._planning import GenerationRequest, Planner
from gptoss_modal.testing._responses import ResponseStore
from gptoss_modal.testing._responses_layout import layout_stream
from gptoss_modal.testing._validation import Rejection
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

TOOL = {"type": "function", "name": "get_weather", "parameters": {"type": "object"}}
CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
CITY_TOOL = {**TOOL, "parameters": CITY}


# --- input conversion ---------------------------------------------------------------------------


def test_a_string_input_with_instructions_is_a_system_then_user_turn() -> None:
    """``instructions`` becomes the system message, a string input the user's."""
    assert rinput.chat_messages("hi", "Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi"},
    ]


def test_items_become_chat_messages_with_a_tool_result_last() -> None:
    """Messages (parts joined), a function call and its output map to user, assistant
    tool_calls and ``role: tool``, so the engine answers after a tool result."""
    items = [
        {"role": "user", "content": [{"type": "input_text", "text": "weather "}, {"text": "?"}]},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
    ]
    messages = rinput.chat_messages(items)
    assert messages[0] == {"role": "user", "content": "weather ?"}
    assert messages[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": "{}"}
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([{"type": "image_generation_call"}], "input[0].type"),
        ([{"role": "robot", "content": "x"}], "input[0].role"),
        (7, "input="),
    ],
)
def test_unreadable_input_is_a_400_naming_the_field(value: Any, field: str) -> None:
    """An item type, role or input shape the mock cannot read is refused, naming the field."""
    with pytest.raises(Rejection) as caught:
        rinput.chat_messages(value)
    assert caught.value.status == 400
    assert field in json.loads(caught.value.body)["error"]["message"]


def test_tools_and_tool_choice_take_chat_shape() -> None:
    """Function tools become chat tools; built-in tools are left to the tool server."""
    tools = rinput.chat_tools([TOOL, {"type": "web_search_preview"}])
    assert tools == [
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
    ]
    assert rinput.chat_tool_choice({"type": "function", "name": "f"}) == {
        "type": "function",
        "function": {"name": "f"},
    }
    assert rinput.chat_tool_choice("auto") == "auto"


# --- the store ----------------------------------------------------------------------------------


def test_the_store_keeps_only_the_most_recent() -> None:
    """Past its limit the store drops the oldest response, and never holds more."""
    store = ResponseStore(limit=3)
    for n in range(5):
        store.put(f"resp_{n}", b"{}", [])
        assert len(store) <= 3
    assert store.get("resp_0") is None
    assert store.get("resp_1") is None
    assert [store.get(f"resp_{n}") is not None for n in (2, 3, 4)] == [True, True, True]


# --- over HTTP ----------------------------------------------------------------------------------


async def call(
    server: MockVLLM, method: str, path: str, body: Any = None, headers: Any = None
) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, server.url + path, json=body, headers=headers) as reply,
    ):
        return reply.status, await reply.read()


@pytest.fixture(params=VLLM_VERSIONS)
async def store_server(request: pytest.FixtureRequest) -> AsyncIterator[MockVLLM]:
    """A mock with the store on, in each version's mode."""
    config = MockConfig(vllm_version=request.param, content_tokens=6, responses_store=True)
    async with MockVLLM(config) as server:
        yield server


async def test_a_stored_response_is_retrieved_and_continued(store_server: MockVLLM) -> None:
    """With the store on: GET returns the reply as sent, previous_response_id continues it
    (a longer prompt), and cancel refuses a finished response as vLLM does."""
    status, body = await call(store_server, "POST", "/v1/responses", {"input": "hi"})
    first = json.loads(body)
    assert status == 200
    status, kept = await call(store_server, "GET", f"/v1/responses/{first['id']}")
    assert (status, kept) == (200, body)
    status, body = await call(
        store_server,
        "POST",
        "/v1/responses",
        {"input": "more", "previous_response_id": first["id"]},
    )
    second = json.loads(body)
    assert second["previous_response_id"] == first["id"]
    assert second["usage"]["input_tokens"] > first["usage"]["input_tokens"]
    status, body = await call(store_server, "POST", f"/v1/responses/{first['id']}/cancel")
    assert status == 400
    assert json.loads(body)["error"]["message"] == "Cannot cancel a synchronous response."


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_without_the_store_retrieve_is_vllm_s_404(version: VllmVersion) -> None:
    """With the store off (vLLM's default) nothing is kept: GET, cancel and
    previous_response_id get vLLM's not-found error naming the id."""
    async with MockVLLM(MockConfig(vllm_version=version)) as server:
        status, body = await call(server, "POST", "/v1/responses", {"input": "hi"})
        rid = json.loads(body)["id"]
        for method, path, sent in (
            ("GET", f"/v1/responses/{rid}", None),
            ("POST", f"/v1/responses/{rid}/cancel", None),
            ("POST", "/v1/responses", {"input": "x", "previous_response_id": rid}),
        ):
            status, body = await call(server, method, path, sent)
            error = json.loads(body)["error"]
            assert (status, error["code"]) == (404, 404)
            assert error["message"] == f"Response with id '{rid}' not found."
            assert error["param"] == (None if version == "0.13.0" else "response_id")


async def test_auth_and_model_are_checked_as_for_chat() -> None:
    """A missing key is vLLM's 401; an unknown model its 404."""
    async with MockVLLM(MockConfig(api_keys=("k",))) as server:
        status, body = await call(server, "POST", "/v1/responses", {"input": "hi"})
        assert (status, body) == (401, b'{"error":"Unauthorized"}')
        auth = {"Authorization": "Bearer k"}
        status, _ = await call(
            server, "POST", "/v1/responses", {"model": "nope", "input": "hi"}, auth
        )
        assert status == 404


# --- faults -------------------------------------------------------------------------------------


def events_of(data: bytes) -> list[str]:
    return [block.partition("\n")[0] for block in data.decode().split("\n\n") if block]


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_each_fault_in_this_api_s_bytes(version: VllmVersion) -> None:
    """error: vLLM's payload under ``event: error`` after ``after`` events, no terminal;
    malformed: an unparseable event, then the rest; stall: a pause, then all events; drop:
    the body ends early; http-NNN and dead: the error status before any byte."""
    async with MockVLLM(MockConfig(vllm_version=version, content_tokens=6)) as server:
        body = {"input": "hi", "stream": True}
        status, clean = await call(server, "POST", "/v1/responses", body)
        count = len(events_of(clean))

        def fault(spec: str) -> dict[str, str]:
            return {"X-Mock-Fault": spec}

        _, data = await call(server, "POST", "/v1/responses", body, fault("error:after=4"))
        kinds = events_of(data)
        assert (len(kinds), kinds[-1]) == (5, "event: error")
        assert "Internal server error" in data.decode()
        _, data = await call(server, "POST", "/v1/responses", body, fault("malformed:after=3"))
        assert len(events_of(data)) == count + 1
        _, data = await call(
            server, "POST", "/v1/responses", body, fault("stall:after=3,seconds=0.01")
        )
        assert len(events_of(data)) == count
        with pytest.raises(aiohttp.ClientPayloadError):
            await call(server, "POST", "/v1/responses", body, fault("drop:after=3"))
        status, _ = await call(server, "POST", "/v1/responses", body, fault("http-503"))
        assert status == 503
        status, _ = await call(server, "POST", "/v1/responses", body, fault("dead"))
        assert status == 500
        status, data = await call(
            server, "POST", "/v1/responses", {"input": "hi"}, fault("error:code=400")
        )
        assert status == 400


# --- the event layout ---------------------------------------------------------------------------


def call_events(version: VllmVersion) -> list[dict[str, Any]]:
    """The events of a streamed response that reasons, then calls get_weather."""
    planner = Planner(MockConfig(vllm_version=version))
    messages = rinput.chat_messages("Use get_weather for Paris.")
    plan = planner.plan(
        GenerationRequest(
            messages=messages, tools=rinput.chat_tools([CITY_TOOL]), tool_choice="auto"
        )
    )
    assert plan.generation.tool_name == "get_weather"
    echo = rw.Echo(response_id="resp_x", model="llm", max_output_tokens=100)
    layout = layout_stream(
        plan, version=version, echo=echo, created=0, usage=rw.Usage(1, 2, 3), stream_interval=1
    )
    return [json.loads(e.split(b"\ndata: ", 1)[1]) for e in layout.stream.events]


@pytest.mark.parametrize("version", VLLM_VERSIONS)
def test_a_function_call_streams_every_argument_token(version: VllmVersion) -> None:
    """The argument deltas add up to the done event's arguments, which are the engine's."""
    events = call_events(version)
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    (done,) = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert "".join(deltas) == done["arguments"]
    assert json.loads(done["arguments"]) == {"city": "Paris"}


@pytest.mark.parametrize("version", VLLM_VERSIONS)
def test_output_indexes_are_each_version_s(version: VllmVersion) -> None:
    """0.33.0's done events carry their item's index; 0.13.0's the next one (it raises the
    index before them) and its call item opens with the reasoning item's id."""
    events = call_events(version)
    added = [e for e in events if e["type"] == "response.output_item.added"]
    done = [e for e in events if e["type"] == "response.output_item.done"]
    shift = 1 if version == "0.13.0" else 0
    assert [d["output_index"] for d in done] == [a["output_index"] + shift for a in added]
    reasoning, call = (a["item"] for a in added)
    assert (call["id"] == reasoning["id"]) == (version == "0.13.0")
