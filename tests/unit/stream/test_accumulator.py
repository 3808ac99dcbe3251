"""ChatAccumulator and ChatResult: folding chunks into the message, timings from stamps, and the
one definition of decode speed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gptoss_modal import (
    ChatAccumulator,
    ChatChunk,
    ChatMessage,
    ChatResult,
    ChunkParseError,
    ServerSentEvent,
    ToolCall,
    decode_tokens_per_s,
    parse_chat_chunk,
    time_per_output_token_s,
)
from tests.strategies_stream import (
    VLLM_ROLE,
    VLLM_TOOL_ARGS,
    VLLM_TOOL_START,
    VLLM_USAGE,
    delta_scripts,
    render_vllm_chunk,
)


def chunk(body: str | dict[str, Any], arrival: float = 0.0) -> ChatChunk:
    data = body if isinstance(body, str) else json.dumps(body)
    parsed = parse_chat_chunk(ServerSentEvent(data), arrival=arrival)
    assert isinstance(parsed, ChatChunk)
    return parsed


def delta(arrival: float = 0.0, index: int = 0, **fields: Any) -> ChatChunk:
    finish = fields.pop("finish_reason", None)
    usage = fields.pop("usage", None)
    body: dict[str, Any] = {"choices": [{"index": index, "delta": fields, "finish_reason": finish}]}
    if usage is not None:
        body["usage"] = usage
    return chunk(body, arrival)


def fold(*chunks: ChatChunk) -> ChatAccumulator:
    accumulator = ChatAccumulator()
    for c in chunks:
        accumulator.add(c)
    return accumulator


def test_content_and_reasoning_are_concatenated_separately() -> None:
    """Reasoning deltas build the reasoning and content deltas the content, in order."""
    message = fold(
        chunk(VLLM_ROLE),
        delta(reasoning="I should ", reasoning_content="I should "),
        delta(reasoning="greet.", reasoning_content="greet."),
        delta(content="Hi", reasoning_content=None),
        delta(content=" there", finish_reason="stop"),
    ).message()
    assert message == ChatMessage(
        role="assistant", content="Hi there", reasoning="I should greet.", finish_reason="stop"
    )


def test_tool_call_is_assembled_from_its_fragments() -> None:
    """The id, type and name of a call come from its first delta; arguments are joined."""
    more = json.loads(VLLM_TOOL_ARGS.replace('{\\"city\\": \\"Paris\\"}', "}"))
    message = fold(
        chunk(VLLM_TOOL_START),
        chunk(VLLM_TOOL_ARGS.replace('\\"Paris\\"}', '\\"Par')),
        delta(tool_calls=[{"index": 0, "function": {"arguments": 'is"'}}]),
        chunk(more),
        delta(finish_reason="tool_calls"),
    ).message()
    (call,) = message.tool_calls
    assert call == ToolCall(
        index=0, id="chatcmpl-tool-abc", name="get_weather", arguments='{"city": "Paris"}'
    )
    assert call.parsed_arguments() == {"city": "Paris"}
    assert message.finish_reason == "tool_calls"


def test_several_tool_calls_are_kept_apart_by_index() -> None:
    """Fragments are routed by index, even interleaved, and calls come out in index order."""
    message = fold(
        delta(tool_calls=[{"index": 1, "id": "b", "type": "function",
                           "function": {"name": "second", "arguments": ""}}]),
        delta(tool_calls=[{"index": 0, "id": "a", "type": "function",
                           "function": {"name": "first", "arguments": ""}}]),
        delta(tool_calls=[{"index": 1, "function": {"arguments": "[2"}}]),
        delta(tool_calls=[{"index": 0, "function": {"arguments": "[1]"}}]),
        delta(tool_calls=[{"index": 1, "function": {"arguments": "]"}}]),
    ).message()  # fmt: skip
    assert [(c.index, c.id, c.name, c.arguments) for c in message.tool_calls] == [
        (0, "a", "first", "[1]"),
        (1, "b", "second", "[2]"),
    ]


def test_tool_call_arguments_that_are_not_JSON_raise_ChunkParseError() -> None:
    """parsed_arguments() names the call whose argument text is not JSON."""
    call = ToolCall(index=2, id="x", name="f", arguments='{"a": ')
    with pytest.raises(ChunkParseError, match=r"tool call 2 \(f\)"):
        call.parsed_arguments()


def test_usage_is_the_last_one_received() -> None:
    """The final usage chunk's counts replace running ones."""
    accumulator = fold(
        delta(content="a", usage={"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}),
        chunk(VLLM_USAGE),
    )
    assert accumulator.usage is not None
    assert accumulator.usage.completion_tokens == 8
    assert accumulator.chunk_count == 2


def test_choices_are_folded_per_index() -> None:
    """With n > 1, each choice index has its own message."""
    accumulator = fold(delta(content="a", index=0), delta(content="b", index=1))
    assert accumulator.indices == (0, 1)
    assert (accumulator.message(0).content, accumulator.message(1).content) == ("a", "b")


def test_unknown_choice_index_gives_an_empty_message() -> None:
    """Asking for a choice that sent nothing gives an empty assistant message."""
    assert ChatAccumulator().message(3) == ChatMessage()


def test_stop_reason_is_kept() -> None:
    """The stop reason of the finishing chunk is on the message."""
    body = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": 7}]}
    assert fold(chunk(body)).message().stop_reason == 7


@given(delta_scripts())
def test_final_text_equals_the_concatenation_of_the_deltas(script: list[dict[str, Any]]) -> None:
    """Content, reasoning and each call's arguments are exactly their deltas joined in order."""
    accumulator = fold(*(chunk(render_vllm_chunk(step)) for step in script))
    message = accumulator.message()
    assert message.content == "".join(s.get("content", "") for s in script)
    assert message.reasoning == "".join(s.get("reasoning", "") for s in script)
    for call in message.tool_calls:
        fragments = [s["tool_args"]["arguments"] for s in script
                     if "tool_args" in s and s["tool_args"]["index"] == call.index]  # fmt: skip
        assert call.arguments == "".join(fragments)


@given(delta_scripts())
def test_accumulator_keeps_what_the_stream_said_apart(script: list[dict[str, Any]]) -> None:
    """Partner of the concatenation property (joining every text into one string would pass
    it for content-only streams): the call names, ids and finish reason come through, and no
    reasoning leaks into content."""
    message = fold(*(chunk(render_vllm_chunk(step)) for step in script)).message()
    starts = [s["tool_start"] for s in script if "tool_start" in s]
    assert [(c.id, c.name) for c in message.tool_calls] == [(s["id"], s["name"]) for s in starts]
    assert message.finish_reason == script[-1]["finish"]
    assert message.role == "assistant"
    if not any("content" in s for s in script):
        assert message.content == ""


# --- ChatResult: timings from the stamps on the chunks (no clock involved) ---


def stamped_result() -> ChatResult:
    """A request started at t=100: role chunk at +1, reasoning at +2, content at +3 and +4.5,
    the finishing chunk at +5, usage at +5.1."""
    result = ChatResult(started=100.0)
    result.chunks += [
        chunk(VLLM_ROLE, 101.0),
        delta(102.0, reasoning="hm"),
        delta(103.0, content="a"),
        delta(104.5, content="b"),
        delta(105.0, finish_reason="stop"),
        chunk(VLLM_USAGE, 105.1),
    ]
    result.done = True
    return result


def test_first_chunk_ttft_and_first_content_are_three_different_times() -> None:
    """Time to first chunk counts the empty role chunk; TTFT the first reasoning or content;
    first content the first content token."""
    result = stamped_result()
    assert (result.first_chunk_s, result.ttft_s, result.ttft_content_s) == (1.0, 2.0, 3.0)


def test_time_to_last_token_ignores_the_usage_chunk() -> None:
    """The last token is the last chunk with a choice, not the usage chunk after it."""
    assert stamped_result().ttlt_s == 5.0


def test_gaps_are_between_chunks_that_carry_text() -> None:
    """Gaps skip the role chunk, the bare finishing chunk and the usage chunk."""
    assert stamped_result().gaps_s() == [1.0, 1.5]


def test_decode_rate_excludes_the_first_token() -> None:
    """Decode tokens/s is (completion tokens - 1) over the time from the first chunk (vLLM's role
    chunk, sent with the first token) to the last token: 7 tokens over 4 s."""
    assert stamped_result().decode_tokens_per_s == pytest.approx(7 / 4.0)


def test_time_per_output_token_is_the_inverse_of_the_decode_rate() -> None:
    """TPOT is (last token - first chunk) / (tokens - 1), and the decode rate its inverse."""
    assert time_per_output_token_s(11, 2.0, 2.5) == pytest.approx(0.05)
    assert decode_tokens_per_s(11, 2.0, 2.5) == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("tokens", "first", "last"),
    [(1, 0.0, 1.0), (0, 0.0, 1.0), (None, 0.0, 1.0), (5, None, 1.0), (5, 0.0, None)],
)
def test_no_decode_speed_without_a_second_token_or_the_stamps(
    tokens: int | None, first: float | None, last: float | None
) -> None:
    """Under two tokens, or without the first or last stamp, there is no TPOT and no rate."""
    assert time_per_output_token_s(tokens, first, last) is None
    assert decode_tokens_per_s(tokens, first, last) is None


def test_every_token_in_one_read_has_zero_tpot_and_no_rate() -> None:
    """Tokens all stamped by one read give a TPOT of 0 and no (infinite) rate."""
    assert time_per_output_token_s(9, 3.0, 3.0) == 0.0
    assert decode_tokens_per_s(9, 3.0, 3.0) is None


@given(
    ttft=st.floats(0.001, 5.0),
    itl=st.floats(0.001, 0.2),
    tokens=st.integers(2, 300),
    hidden=st.integers(0, 5),
)
def test_decode_rate_recovers_the_servers_rate_despite_hidden_tokens(
    ttft: float, itl: float, tokens: int, hidden: int
) -> None:
    """A server that makes a token every ``itl`` s, its first ``hidden`` ones (harmony headers)
    sent as no text, has decode rate 1 / itl; timing from the first visible token would not."""
    assume(tokens > hidden)
    result = ChatResult(started=10.0)
    first = 10.0 + ttft  # the role chunk goes out with the first token
    result.chunks.append(chunk(VLLM_ROLE, first))
    result.chunks += [delta(first + k * itl, content="x") for k in range(hidden, tokens)]
    usage = VLLM_USAGE.replace('"completion_tokens":8', f'"completion_tokens":{tokens}')
    result.chunks.append(chunk(usage, first + tokens * itl))
    assert result.decode_tokens_per_s == pytest.approx(1.0 / itl)


def test_result_folds_the_message_and_usage() -> None:
    """The result's message, finish reason and token count come from its chunks."""
    result = stamped_result()
    assert (result.content, result.reasoning, result.finish_reason) == ("ab", "hm", "stop")
    assert result.completion_tokens == 8


def test_result_folds_new_chunks_after_a_first_look() -> None:
    """Reading the message mid-stream, then adding chunks, gives the updated message."""
    result = ChatResult()
    result.chunks.append(delta(content="a"))
    assert result.content == "a"
    result.chunks.append(delta(content="b"))
    assert result.content == "ab"


def test_empty_result_has_no_timings() -> None:
    """With no chunks every timing is None and the message empty."""
    result = ChatResult(started=5.0)
    assert (result.first_chunk_s, result.ttft_s, result.ttlt_s) == (None, None, None)
    assert result.decode_tokens_per_s is None
    assert result.completion_tokens is None
    assert result.message == ChatMessage()
    assert result.gaps_s() == []


def test_chunk_tokens_come_from_continuous_usage() -> None:
    """Per-chunk token counts are the differences of the running completion_tokens."""
    result = ChatResult()
    for arrival, (text, total) in enumerate([("", 0), ("a", 1), ("bcd", 4), ("e", 5)]):
        usage = {"prompt_tokens": 3, "completion_tokens": total, "total_tokens": 3 + total}
        result.chunks.append(delta(float(arrival), content=text, usage=usage))
    result.chunks.append(
        chunk(VLLM_USAGE.replace('"completion_tokens":8', '"completion_tokens":5'))
    )
    assert result.chunk_tokens() == [0, 1, 3, 1, 0]


def test_chunk_tokens_are_None_without_continuous_usage() -> None:
    """Chunks without usage get None; only the usage chunk has a count."""
    assert stamped_result().chunk_tokens() == [None, None, None, None, None, 8]
