"""Responses events: parsed by their event: field, split anyhow, folded into the final response."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import (
    ChunkParseError,
    ConfigError,
    FunctionCallArgumentsDelta,
    OutputTextDelta,
    ReasoningTextDelta,
    ResponseEventDecoder,
    ResponseLifecycleEvent,
    ResponseResult,
    ServerSentEvent,
    SSEDecodeError,
    SSEDecoder,
    ToolCallStatusEvent,
    UnknownEvent,
    UpstreamError,
    build_response_request,
    encode_event,
    parse_response_event,
    parse_response_events,
)
from gptoss_modal.stream.responses import AnyResponseEvent, event_to_builtins
from gptoss_modal.stream.responses_request import response_tools
from tests.strategies_stream import split_at

TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


def response(status: str, output: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A response object as vLLM 0.33.0 puts it on its lifecycle events."""
    return {"id": "resp_1", "object": "response", "status": status, "model": "gpt-oss",
            "output": output, **extra}  # fmt: skip


def script(
    reasoning: list[str],
    text: list[str],
    arguments: list[str] | None = None,
    *,
    terminal: str = "response.completed",
) -> list[dict[str, Any]]:
    """The events of one gpt-oss response: reasoning, then an answer, then maybe a call."""
    thought, answer = "".join(reasoning), "".join(text)
    rs = {"id": "rs_1", "type": "reasoning", "summary": [], "status": "completed",
          "content": [{"type": "reasoning_text", "text": thought}]}  # fmt: skip
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": answer, "annotations": []}]}  # fmt: skip
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response("in_progress", [])},
        {"type": "response.in_progress", "response": response("in_progress", [])},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**rs, "status": "in_progress"},
        },
        *(
            {
                "type": "response.reasoning_text.delta",
                "item_id": "rs_1",
                "output_index": 0,
                "content_index": 0,
                "delta": d,
            }
            for d in reasoning
        ),
        {
            "type": "response.reasoning_text.done",
            "item_id": "rs_1",
            "output_index": 0,
            "content_index": 0,
            "text": thought,
        },
        {"type": "response.output_item.done", "output_index": 0, "item": rs},
        {"type": "response.output_item.added", "output_index": 1, "item": {**msg, "content": []}},
        *(
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 1,
                "content_index": 0,
                "delta": d,
                "logprobs": [],
            }
            for d in text
        ),
        {"type": "response.output_item.done", "output_index": 1, "item": msg},
    ]
    output: list[dict[str, Any]] = [rs, msg]
    if arguments is not None:
        call = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "get_weather",
                "arguments": "".join(arguments), "status": "completed"}  # fmt: skip
        events += [
            {
                "type": "response.output_item.added",
                "output_index": 2,
                "item": {**call, "arguments": ""},
            },
            *(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": "fc_1",
                    "output_index": 2,
                    "delta": d,
                }
                for d in arguments
            ),
            {
                "type": "response.function_call_arguments.done",
                "item_id": "fc_1",
                "output_index": 2,
                "arguments": "".join(arguments),
            },
            {"type": "response.output_item.done", "output_index": 2, "item": call},
        ]
        output.append(call)
    usage = {"input_tokens": 7, "output_tokens": 5, "total_tokens": 12,
             "input_tokens_details": {"cached_tokens": 3, "cache_write_tokens": 0},
             "output_tokens_details": {"reasoning_tokens": 2}}  # fmt: skip
    status = "incomplete" if terminal == "response.incomplete" else "completed"
    details = {"reason": "max_output_tokens"} if status == "incomplete" else None
    events.append(
        {
            "type": terminal,
            "response": response(status, output, usage=usage, incomplete_details=details),
        }
    )
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def wire(events: Iterable[dict[str, Any]]) -> bytes:
    """vLLM's bytes for ``events``: ``event: <type>`` and ``data: <json>`` per event."""
    return b"".join(encode_event(json.dumps(e), event=e["type"]) for e in events)


def decode(reads: Iterable[bytes]) -> tuple[list[AnyResponseEvent], bool]:
    decoder, done = ResponseEventDecoder(), False
    into: list[AnyResponseEvent] = []
    for read in reads:
        done = decoder.feed(read, into)
    return into, done


scripts_st = st.builds(
    script,
    st.lists(TEXT, max_size=5),
    st.lists(TEXT, max_size=5),
    st.one_of(st.none(), st.lists(TEXT, max_size=4)),
    terminal=st.sampled_from(["response.completed", "response.incomplete"]),
)


@given(scripts_st, st.lists(st.integers(0, 5000), max_size=12))
def test_any_split_gives_the_same_events(events: list[dict[str, Any]], cuts: list[int]) -> None:
    """Cutting the bytes anywhere gives the events of the whole stream, each its type's value."""
    data = wire(events)
    whole, done = decode([data])
    pieces, pieces_done = decode(split_at(data, cuts))
    assert done
    assert pieces_done
    assert [event_to_builtins(e) for e in pieces] == [event_to_builtins(e) for e in whole]
    assert [e.type for e in whole] == [e["type"] for e in events]  # partner: nothing dropped


@given(scripts_st)
def test_accumulated_text_is_the_deltas_and_the_terminal_copy(events: list[dict[str, Any]]) -> None:
    """The folded answer and reasoning equal their concatenated deltas and the terminal copy."""
    parsed, _ = decode([wire(events)])
    result = ResponseResult()
    result.chunks = parsed
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    thought = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_text.delta")
    terminal = parsed[-1]
    assert isinstance(terminal, ResponseLifecycleEvent)
    assert result.text == deltas == terminal.response.output_text
    assert result.reasoning == thought == terminal.response.reasoning_text
    calls = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert [c.arguments for c in result.output.function_calls] == [c["arguments"] for c in calls]


def test_the_output_has_calls_usage_status_and_incomplete_reason() -> None:
    """A cut response: function call complete, usage with cached and reasoning tokens, reason."""
    parsed, done = decode([wire(script(["a"], ["b"], ['{"city":', '"Paris"}'],
                                       terminal="response.incomplete"))])  # fmt: skip
    result = ResponseResult()
    result.chunks = parsed
    out = result.output
    assert done
    (call,) = out.function_calls
    assert (call.id, call.name, call.parsed_arguments()) == (
        "call_1",
        "get_weather",
        {"city": "Paris"},
    )
    assert (out.status, out.incomplete_reason, out.id) == (
        "incomplete",
        "max_output_tokens",
        "resp_1",
    )
    assert out.usage is not None
    assert (out.usage.output_tokens, out.usage.cached_tokens, out.usage.reasoning_tokens) == (
        5,
        3,
        2,
    )


@given(scripts_st)
def test_cut_at_every_event_boundary_is_not_done_and_keeps_the_events_before(
    events: list[dict[str, Any]],
) -> None:
    """A stream cut after event k (before the terminal one) has exactly k events, not done."""
    encoded = [encode_event(json.dumps(e), event=e["type"]) for e in events]
    for k in range(len(encoded)):
        parsed, done = decode([b"".join(encoded[:k])])
        assert not done
        assert [e.type for e in parsed] == [e["type"] for e in events[:k]]


def parse_ignoring_event_field(sse: ServerSentEvent) -> AnyResponseEvent:
    """The trivial parser: the type from the data alone."""
    return parse_response_event(ServerSentEvent(sse.data))


def the_event_field_decides(parse: Callable[[ServerSentEvent], AnyResponseEvent]) -> bool:
    """Property: data whose type disagrees with its ``event:`` line is refused, not reread."""
    data = json.dumps({"type": "response.output_text.delta", "delta": "x", "item_id": "m"})
    try:
        parse(ServerSentEvent(data, event="response.reasoning_text.delta"))
    except ChunkParseError:
        return True
    return False


def test_a_parser_that_ignores_the_event_field_fails_the_named_property() -> None:
    """Ours holds `the_event_field_decides`; the trivial parser that ignores event: does not."""
    assert the_event_field_decides(parse_response_event)
    assert not the_event_field_decides(parse_ignoring_event_field)


def test_an_event_without_an_event_line_is_typed_by_its_data() -> None:
    """With no event: line (event 'message'), the data's type picks the struct."""
    event = parse_response_event(
        ServerSentEvent('{"type":"response.output_text.delta","delta":"x"}')
    )
    assert isinstance(event, OutputTextDelta)
    assert event.delta == "x"


def test_unknown_types_are_kept_with_their_data() -> None:
    """An event type we do not know comes back as UnknownEvent with its JSON, not dropped."""
    data = '{"type":"response.audio.delta","delta":"AAA","sequence_number":4}'
    event = parse_response_event(ServerSentEvent(data, event="response.audio.delta"))
    assert event == UnknownEvent("response.audio.delta", data, 4)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ("{not json", "not valid JSON"),
        ('{"type":"response.output_text.delta","delta":5}', "is not a response.output_text.delta"),
        ("[1, 2]", "is not a response.output_text.delta"),
    ],
)
def test_malformed_or_wrong_shape_is_a_chunk_parse_error(data: str, says: str) -> None:
    """Bad JSON or a wrong shape raises ChunkParseError saying which and quoting the data."""
    with pytest.raises(ChunkParseError, match=says):
        parse_response_event(ServerSentEvent(data, event="response.output_text.delta"))


def test_unknown_type_with_a_non_object_is_an_error() -> None:
    """An unknown event whose data is not a JSON object is refused, not kept."""
    with pytest.raises(ChunkParseError, match="not a JSON object"):
        parse_response_event(ServerSentEvent("[1]", event="response.new_thing"))


@pytest.mark.parametrize(
    ("event", "data"),
    [
        ("error", '{"error": {"message": "boom", "type": "InternalServerError", "code": 500}}'),
        ("error", '{"type": "error", "message": "boom", "code": "server_error", "param": null}'),
        ("response.output_text.delta", '{"error": {"message": "boom", "code": 500}}'),
    ],
)
def test_in_stream_errors_raise_upstream_error_with_the_message(event: str, data: str) -> None:
    """vLLM's error payload or the openai error event raises UpstreamError with its message."""
    with pytest.raises(UpstreamError, match="boom"):
        parse_response_event(ServerSentEvent(data, event=event))


def test_response_failed_is_kept_then_raises() -> None:
    """response.failed ends the stream: appended, then UpstreamError with the response's error."""
    data = json.dumps({"type": "response.failed", "response": response(
        "failed", [], error={"message": "engine died", "code": "server_error"})})  # fmt: skip
    into: list[AnyResponseEvent] = []
    with pytest.raises(UpstreamError, match="engine died"):
        parse_response_events([ServerSentEvent(data, event="response.failed")], into)
    assert [e.type for e in into] == ["response.failed"]


def test_events_after_the_terminal_one_are_not_parsed() -> None:
    """Bytes after the terminal event are ignored, even if they are not events."""
    decoder = ResponseEventDecoder()
    into: list[AnyResponseEvent] = []
    assert decoder.feed(wire(script([], ["x"])), into)
    count = len(into)
    assert decoder.feed(b"event: junk\ndata: {nope\n\n", into)
    assert len(into) == count


def test_vllm_0_13_reasoning_parts_and_tool_statuses_are_typed() -> None:
    """0.13.0's own reasoning_part events and built-in tool status events parse typed."""
    part = parse_response_event(ServerSentEvent(json.dumps({
        "type": "response.reasoning_part.added", "item_id": "rs", "output_index": 3,
        "content_index": 0, "part": {"type": "reasoning_text", "text": ""},
        "sequence_number": 2}), event="response.reasoning_part.added"))  # fmt: skip
    assert part.type == "response.reasoning_part.added"
    status = parse_response_event(ServerSentEvent(
        '{"type":"response.web_search_call.searching","item_id":"ws","output_index":1}',
        event="response.web_search_call.searching"))  # fmt: skip
    assert isinstance(status, ToolCallStatusEvent)
    assert status.status == "searching"


def test_builtin_tool_calls_fold_with_status_and_code() -> None:
    """A python tool call: code from its deltas, the last status from its events."""
    item = {"id": "ci_1", "type": "code_interpreter_call", "status": "in_progress", "code": ""}
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {
            "type": "response.code_interpreter_call.in_progress",
            "item_id": "ci_1",
            "output_index": 0,
        },
        {
            "type": "response.code_interpreter_call_code.delta",
            "item_id": "ci_1",
            "output_index": 0,
            "delta": "print(",
        },
        {
            "type": "response.code_interpreter_call_code.delta",
            "item_id": "ci_1",
            "output_index": 0,
            "delta": "1)",
        },
        {
            "type": "response.code_interpreter_call.interpreting",
            "item_id": "ci_1",
            "output_index": 0,
        },
        {"type": "response.code_interpreter_call.completed", "item_id": "ci_1", "output_index": 0},
    ]
    result = ResponseResult()
    result.chunks, _ = decode([wire(events)])
    (call,) = result.output.tool_calls
    assert (call.type, call.status, call.input) == (
        "code_interpreter_call",
        "completed",
        "print(1)",
    )


def test_a_vllm_0_13_function_call_folds_into_one_call_beside_the_message() -> None:
    """0.13.0 adds a call under the message's id, streams it as ``fc_1`` and ends it with a
    null-id done item naming ``fc_1``: one call, with the added item's call id and the
    arguments, and the null id parses."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "Sure."}]}  # fmt: skip
    added = {"id": "msg_1", "type": "function_call", "call_id": "call_a", "name": "get_weather",
             "arguments": "", "status": "in_progress"}  # fmt: skip
    done = {**added, "id": None, "call_id": "fc_b", "arguments": '{"city":"Paris"}',
            "status": "completed", "item_id": "fc_1", "output_index": 2,
            "sequence_number": -1}  # fmt: skip
    delta = {"item_id": "fc_1", "output_index": 1, "delta": '{"city":"Paris"}'}
    events = [
        {"type": "response.output_item.done", "output_index": 1, "item": message},
        {"type": "response.output_item.added", "output_index": 1, "item": added},
        {"type": "response.function_call_arguments.delta", **delta},
        {"type": "response.output_item.done", "output_index": 2, "item": done},
    ]
    result = ResponseResult()
    result.chunks, _ = decode([wire(events)])
    (call,) = result.output.function_calls
    assert (call.id, call.name, call.parsed_arguments()) == (
        "call_a",
        "get_weather",
        {"city": "Paris"},
    )
    assert result.chunks[-1].item.id is None  # type: ignore[union-attr]


def test_timings_three_ways_and_decode_speed() -> None:
    """First event, first output delta, first answer delta; speed from the first to last delta."""
    events = script(["r1", "r2"], ["t1", "t2"])
    result = ResponseResult(started=100.0)
    parsed, _ = decode([wire(events)])
    for number, event in enumerate(parsed):
        event.arrival = 100.0 + number
    result.chunks = parsed
    first_reasoning = next(i for i, e in enumerate(parsed) if isinstance(e, ReasoningTextDelta))
    first_text = next(i for i, e in enumerate(parsed) if isinstance(e, OutputTextDelta))
    last_text = max(i for i, e in enumerate(parsed) if isinstance(e, OutputTextDelta))
    assert (result.first_chunk_s, result.ttft_s, result.ttft_content_s, result.ttlt_s) == (
        0.0, first_reasoning, first_text, last_text)  # fmt: skip
    assert result.decode_tokens_per_s == pytest.approx((5 - 1) / (last_text - first_reasoning))
    assert len(result.gaps_s()) == 3


def test_a_function_call_delta_counts_as_output() -> None:
    """Argument deltas carry output (TTFT for a call-only answer), but not answer content."""
    delta = FunctionCallArgumentsDelta(delta="{")
    assert delta.has_output
    assert not delta.has_content
    assert not FunctionCallArgumentsDelta(delta="").has_output


def test_the_sse_decoder_is_reused_as_is() -> None:
    """The decoder's events are SSEDecoder's, parsed: the event field included."""
    data = wire(script([], ["x"]))
    assert [e.event for e in SSEDecoder().feed(data)] == [e.type for e in decode([data])[0]]


def test_build_response_request_fields() -> None:
    """The body carries every option under the Responses API's own names, streamed."""
    body = build_response_request(
        "hi", instructions="be brief", model="m", reasoning_effort="low",
        tools=[{"type": "function", "name": "f"}], max_output_tokens=9,
        previous_response_id="resp_0", extra={"temperature": 0},
    )  # fmt: skip
    assert body == {
        "input": "hi", "stream": True, "model": "m", "instructions": "be brief",
        "reasoning": {"effort": "low"}, "tools": [{"type": "function", "name": "f"}],
        "max_output_tokens": 9, "previous_response_id": "resp_0", "temperature": 0,
    }  # fmt: skip
    assert msgspec.json.decode(msgspec.json.encode(body)) == body


def test_chat_shaped_function_tools_are_flattened_and_others_pass_as_they_are() -> None:
    """A chat-completions function tool becomes the flat Responses tool; a built-in one is kept."""
    chat_tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    body = build_response_request("hi", tools=[chat_tool, {"type": "web_search_preview"}])
    assert body["tools"] == [
        {"type": "function", "name": "f", "parameters": {"type": "object"}},
        {"type": "web_search_preview"},
    ]
    assert response_tools(body["tools"]) == body["tools"]  # already flat: unchanged


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"input": []}, "input"),
        ({"input": "x", "reasoning_effort": "max"}, "reasoning_effort"),
        ({"input": "x", "max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_build_response_request_refuses_what_vllm_would(kwargs: dict[str, Any], field: str) -> None:
    """An empty input, an effort harmony lacks, or no tokens: ConfigError naming the field."""
    with pytest.raises(ConfigError) as caught:
        build_response_request(**kwargs)
    assert caught.value.field == field


def test_an_event_over_the_cap_raises_after_keeping_the_events_before() -> None:
    """The SSE decoder's per-event cap holds for Responses streams too, keeping what came."""
    first = {"type": "response.output_text.delta", "delta": "hi", "item_id": "m"}
    huge = {"type": "response.output_text.delta", "delta": "x" * 4096, "item_id": "m"}
    data = encode_event(json.dumps(first), event=first["type"]) + encode_event(
        json.dumps(huge), event=huge["type"]
    )
    decoder = ResponseEventDecoder(max_event_chars=1024)
    into: list[AnyResponseEvent] = []
    with pytest.raises(SSEDecodeError, match="1024"):
        decoder.feed(data, into)
    assert [e.type for e in into] == ["response.output_text.delta"]
