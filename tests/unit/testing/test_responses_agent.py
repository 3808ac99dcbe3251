"""The mock's Responses endpoint with the agent loop, the tool-call faults and the prefix
cache: what each does to this API's events and usage, per vLLM version."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from gptoss_modal.serve.options import VLLM_VERSIONS, VllmVersion
from gptoss_modal.stream import Client
from gptoss_modal.testing import _responses_faults as rfaults
from gptoss_modal.testing._planning import GenerationRequest, Planner
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"type": "function", "name": "get_weather", "parameters": CITY}
ASK = {"model": "llm", "input": "Use get_weather for Paris.", "tools": [WEATHER]}


async def post(server: MockVLLM, body: dict[str, Any]) -> tuple[int, bytes]:
    """The status and body of one ``POST /v1/responses``."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/v1/responses", json=body) as reply,
    ):
        return reply.status, await reply.read()


def events(data: bytes) -> list[dict[str, Any]]:
    """Each SSE block's JSON."""
    blocks = [b for b in data.split(b"\n\n") if b]
    return [json.loads(b.partition(b"\ndata: ")[2]) for b in blocks]


async def read_into(reply: aiohttp.ClientResponse, pieces: list[bytes]) -> None:
    """Read a body into ``pieces`` until it ends (or breaks, keeping what came)."""
    async for piece in reply.content.iter_any():
        pieces.append(piece)  # noqa: PERF401  (a comprehension loses the pieces on a break)


def calls(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The function-call items of a response's output."""
    return [item for item in output if item["type"] == "function_call"]


def text_of(output: list[dict[str, Any]]) -> str:
    """The output text of a response's message items."""
    return "".join(
        part["text"] for item in output if item["type"] == "message" for part in item["content"]
    )


# --- the agent loop ------------------------------------------------------------------------------


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_a_responses_agent_loop_gets_a_call_then_an_answer(version: VllmVersion) -> None:
    """Turn 1 calls get_weather with schema-valid arguments; turn 2, sent the call and its
    ``function_call_output`` as items, answers in text quoting the result and calls nothing."""
    async with MockVLLM(MockConfig(vllm_version=version, content_tokens=6)) as server:
        status, data = await post(server, ASK)
        assert status == 200, data
        (call,) = calls(json.loads(data)["output"])
        assert call["name"] == "get_weather"
        assert isinstance(json.loads(call["arguments"])["city"], str)
        items = [
            {"role": "user", "content": ASK["input"]},
            {k: call[k] for k in ("type", "call_id", "name", "arguments")},
            {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny 21C"},
        ]
        status, data = await post(server, {**ASK, "input": items})
        assert status == 200, data
        output = json.loads(data)["output"]
        assert calls(output) == []
        assert text_of(output).startswith("The tool returned sunny 21C.")


# --- tool faults -----------------------------------------------------------------------------


def faulty(version: VllmVersion, rate_field: str) -> MockConfig:
    """A mock whose every tool call gets the fault of ``rate_field``."""
    rates: dict[str, Any] = {rate_field: 1.0}
    return MockConfig(vllm_version=version, content_tokens=6, **rates)


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_a_name_leak_lands_in_the_function_call_name(version: VllmVersion) -> None:
    """name-leak: the streamed and final function_call name carry harmony's channel marker."""
    async with MockVLLM(faulty(version, "tool_name_leak_rate")) as server:
        _, data = await post(server, {**ASK, "stream": True})
        names = {
            e["item"]["name"]
            for e in events(data)
            if e["type"] == "response.output_item.done" and e["item"]["type"] == "function_call"
        }
        assert names == {"get_weather<|channel|>commentary"}


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_a_content_leak_is_output_text_with_the_markup(version: VllmVersion) -> None:
    """content-leak: no function_call item; the output text holds the call's harmony markup."""
    async with MockVLLM(faulty(version, "tool_content_leak_rate")) as server:
        _, data = await post(server, ASK)
        output = json.loads(data)["output"]
        assert calls(output) == []
        assert "to=functions.get_weather" in text_of(output)


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_cut_arguments_are_an_incomplete_call(version: VllmVersion) -> None:
    """args-length: the call's arguments are cut JSON; the non-streamed response is
    ``incomplete`` with the call ``incomplete`` (0.33.0) or ``in_progress`` (0.13.0's
    ``parse_remaining_state``); args-short: cut JSON in a completed call."""
    async with MockVLLM(faulty(version, "tool_args_length_rate")) as server:
        _, data = await post(server, ASK)
        reply = json.loads(data)
        assert reply["status"] == "incomplete"
        (call,) = calls(reply["output"])
        assert call["status"] == ("in_progress" if version == "0.13.0" else "incomplete")
        with pytest.raises(json.JSONDecodeError):
            json.loads(call["arguments"])
    async with MockVLLM(faulty(version, "tool_args_short_rate")) as server:
        _, data = await post(server, ASK)
        reply = json.loads(data)
        (call,) = calls(reply["output"])
        with pytest.raises(json.JSONDecodeError):
            json.loads(call["arguments"])


async def test_a_harmony_error_truncates_0_13_0_s_stream_before_the_call() -> None:
    """0.13.0: the events before the call, then the connection closes (no error, no terminal
    event); non-streamed, vLLM's 400 naming the header it could not read."""
    async with MockVLLM(faulty("0.13.0", "harmony_error_rate")) as server:
        async with (
            aiohttp.ClientSession() as session,
            session.post(server.url + "/v1/responses", json={**ASK, "stream": True}) as reply,
        ):
            pieces: list[bytes] = []
            with pytest.raises(aiohttp.ClientPayloadError):
                await read_into(reply, pieces)
        received = b"".join(pieces)
        kinds = [e["type"] for e in events(received)]
        assert kinds[:2] == ["response.created", "response.in_progress"]
        assert "response.reasoning_text.done" in kinds
        assert b"function_call" not in received
        assert not {"response.completed", "response.incomplete", "error"} & set(kinds)
        status, data = await post(server, ASK)
        assert status == 400
        error = json.loads(data)["error"]
        assert (error["type"], error["code"]) == ("BadRequestError", 400)
        assert "to=functions.get_weather" in error["message"]


async def test_a_harmony_error_loses_the_call_in_0_33_0() -> None:
    """0.33.0 skips the tokens its parser rejects: the reasoning, no call, ``completed``,
    streamed and not, the output tokens still counting everything generated."""
    async with MockVLLM(faulty("0.33.0", "harmony_error_rate")) as server:
        _, data = await post(server, {**ASK, "stream": True})
        streamed = events(data)
        assert b"function_call" not in data
        terminal = streamed[-1]
        assert terminal["type"] == "response.completed"
        assert [i["type"] for i in terminal["response"]["output"]] == ["reasoning"]
        status, data = await post(server, ASK)
        reply = json.loads(data)
        assert (status, reply["status"], calls(reply["output"])) == (200, "completed", [])
        assert reply["usage"]["output_tokens"] == terminal["response"]["usage"]["output_tokens"]
        assert (
            reply["usage"]["output_tokens"]
            > reply["usage"]["output_tokens_details"]["reasoning_tokens"]
        )


def test_call_start_is_the_first_token_after_the_reasoning() -> None:
    """The cut falls on the token after the reasoning's ``<|end|>``; without a call it is the
    generation's length."""
    planner = Planner(MockConfig())
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": CITY}}]
    messages = [{"role": "user", "content": "Use get_weather for Paris."}]
    gen = planner.plan(GenerationRequest(messages=messages, tools=tools)).generation
    at = rfaults.call_start(gen)
    assert 0 < at < len(gen.tokens)
    assert gen.text_of(gen.tokens[at - 1]) == "<|end|>"
    plain = planner.plan(GenerationRequest(messages=messages)).generation
    assert rfaults.call_start(plain) == len(plain.tokens)


# --- the prefix cache ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_a_follow_up_turn_reports_its_cache_hit_without_any_flag(
    version: VllmVersion,
) -> None:
    """Both versions' Responses usage reports ``cached_tokens`` (a whole number of 16-token
    blocks, below the prompt) with ``--enable-prompt-tokens-details`` off: 0 for a new
    prompt, more for the same conversation one turn longer; 0.33.0 also the tokens written."""
    async with MockVLLM(MockConfig(vllm_version=version, content_tokens=6)) as server:
        first = {"model": "llm", "input": "Tell me about the Alps in some detail please."}
        _, data = await post(server, first)
        usage = json.loads(data)["usage"]
        assert usage["input_tokens_details"]["cached_tokens"] == 0
        longer = [
            {"role": "user", "content": first["input"]},
            {"role": "assistant", "content": "They are tall."},
            {"role": "user", "content": "And the Pyrenees?"},
        ]
        _, data = await post(server, {"model": "llm", "input": longer})
        usage = json.loads(data)["usage"]
        details = usage["input_tokens_details"]
        assert 0 < details["cached_tokens"] < usage["input_tokens"]
        assert details["cached_tokens"] % 16 == 0
        assert details["cached_tokens_per_turn"] == [details["cached_tokens"]]
        if version != "0.13.0":
            assert details["cache_write_tokens"] > 0
        else:
            assert "cache_write_tokens" not in details


@pytest.mark.parametrize("version", VLLM_VERSIONS)
async def test_our_client_folds_the_mock_s_call_into_one_function_call(
    version: VllmVersion,
) -> None:
    """Our client gets exactly one call with the mock's JSON arguments, and keeps the
    reasoning, even from 0.13.0's stream (its call added under the reasoning's id, its
    ``.done`` item's id null)."""
    async with (
        MockVLLM(MockConfig(vllm_version=version, content_tokens=6)) as server,
        Client(server.url) as client,
    ):
        result = await client.respond(str(ASK["input"]), tools=[WEATHER])
    output = result.output
    (call,) = output.function_calls
    assert call.name == "get_weather"
    assert isinstance(json.loads(call.arguments)["city"], str)
    assert output.reasoning
