"""parse_chat_chunk: vLLM 0.13.0's chunk shapes and later ones, the end marker, typed errors, and
what a chunk carries (its flags)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import (
    CHUNK_CHOICES,
    CHUNK_CONTENT,
    CHUNK_OUTPUT,
    DONE,
    ChatChunk,
    ChunkParseError,
    ServerSentEvent,
    StreamEnd,
    UpstreamError,
    parse_chat_chunk,
    parse_chat_chunks,
)
from tests.strategies_stream import (
    VLLM_CONTENT,
    VLLM_ERROR,
    VLLM_FINISH_WITH_TEXT,
    VLLM_REASONING,
    VLLM_ROLE,
    VLLM_TOOL_ARGS,
    VLLM_TOOL_START,
    VLLM_USAGE,
)


def parse(data: str, arrival: float = 0.0) -> ChatChunk:
    chunk = parse_chat_chunk(ServerSentEvent(data), arrival=arrival)
    assert isinstance(chunk, ChatChunk)
    return chunk


def test_done_event_is_the_end_marker() -> None:
    """``data: [DONE]`` parses to DONE, not to a chunk."""
    assert parse_chat_chunk(ServerSentEvent("[DONE]")) is DONE
    assert DONE is StreamEnd.DONE


def test_first_vllm_chunk_carries_the_role_and_empty_content() -> None:
    """vLLM's first chunk has role assistant, empty content and no reasoning."""
    chunk = parse(VLLM_ROLE)
    assert chunk.delta is not None
    assert chunk.delta.role == "assistant"
    assert chunk.content == ""
    assert chunk.reasoning is None
    assert not chunk.has_output
    assert (chunk.id, chunk.model, chunk.created) == ("chatcmpl-1", "m", 1)


def test_reasoning_is_read_from_reasoning_first() -> None:
    """When both fields are present (vLLM 0.13.0), ``reasoning`` is the one used."""
    chunk = parse(
        VLLM_REASONING.replace('"reasoning_content":"Let me think"', '"reasoning_content":"old"')
    )
    assert chunk.reasoning == "Let me think"


def test_reasoning_falls_back_to_reasoning_content() -> None:
    """A server that only sends the deprecated ``reasoning_content`` still gives reasoning."""
    chunk = parse('{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}')
    assert chunk.reasoning == "hmm"
    assert chunk.has_output


def test_reasoning_alone_as_vllm_0_16_sends_it() -> None:
    """From vLLM 0.16 only ``reasoning`` is sent; that is enough."""
    assert parse('{"choices":[{"index":0,"delta":{"reasoning":"so"}}]}').reasoning == "so"


def test_content_chunk_carries_text_beside_a_null_reasoning_content() -> None:
    """A content delta from vLLM 0.13.0 has content and ``reasoning_content: null``."""
    chunk = parse(VLLM_CONTENT)
    assert (chunk.content, chunk.reasoning) == ("Hello", None)
    assert chunk.has_output


def test_first_tool_call_delta_has_id_type_and_name() -> None:
    """The first delta of a call carries its id, type, index, name and empty arguments."""
    (call,) = parse(VLLM_TOOL_START).tool_calls
    assert (call.index, call.id, call.type) == (0, "chatcmpl-tool-abc", "function")
    assert call.function is not None
    assert (call.function.name, call.function.arguments) == ("get_weather", "")


def test_later_tool_call_deltas_carry_argument_fragments_only() -> None:
    """Later deltas of a call have its index and an argument fragment, nothing else."""
    (call,) = parse(VLLM_TOOL_ARGS).tool_calls
    assert (call.index, call.id, call.type) == (0, None, None)
    assert call.function is not None
    assert (call.function.name, call.function.arguments) == (None, '{"city": "Paris"}')


def test_finishing_chunk_may_still_carry_text() -> None:
    """With --stream-interval the finishing chunk has finish_reason and the last tokens."""
    chunk = parse(VLLM_FINISH_WITH_TEXT)
    assert (chunk.finish_reason, chunk.content) == ("stop", " world.")
    assert chunk.choices[0].stop_reason is None


def test_stop_reason_may_be_a_token_id_or_a_string() -> None:
    """vLLM's stop_reason is the stop token id (int) or the stop string that ended generation."""
    for stop in (200012, "END"):
        body = {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "stop_reason": stop}]
        }
        assert parse(json.dumps(body)).choices[0].stop_reason == stop


def test_usage_chunk_has_no_choices() -> None:
    """The usage chunk has ``choices: []`` and the token counts."""
    chunk = parse(VLLM_USAGE)
    assert chunk.choices == ()
    assert chunk.delta is None
    assert chunk.content is None
    assert chunk.usage is not None
    assert (chunk.usage.prompt_tokens, chunk.usage.completion_tokens) == (12, 8)
    assert chunk.usage.total_tokens == 20


def test_continuous_usage_rides_on_ordinary_chunks() -> None:
    """With continuous_usage_stats every chunk also carries the running usage."""
    body = json.loads(VLLM_CONTENT)
    body["usage"] = {"prompt_tokens": 3, "total_tokens": 5, "completion_tokens": 2}
    chunk = parse(json.dumps(body))
    assert chunk.content == "Hello"
    assert chunk.usage is not None
    assert chunk.usage.completion_tokens == 2


def test_unknown_fields_are_ignored() -> None:
    """Fields this parser does not know (logprobs, token_ids, new ones) do not matter."""
    body = json.loads(VLLM_CONTENT)
    body["system_fingerprint"] = "x"
    body["choices"][0]["logprobs"] = {"content": [{"token": "Hello", "logprob": -0.1}]}
    body["choices"][0]["delta"]["annotations"] = []
    assert parse(json.dumps(body)).content == "Hello"


def test_arrival_is_stored_on_the_chunk() -> None:
    """The arrival stamp given to the parser is kept on the chunk."""
    assert parse(VLLM_CONTENT, arrival=12.5).arrival == 12.5


def test_delta_may_be_empty() -> None:
    """An empty delta (vLLM's bare finishing chunk) parses with nothing set."""
    chunk = parse('{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}')
    assert (chunk.content, chunk.reasoning, chunk.tool_calls) == (None, None, ())
    assert chunk.finish_reason == "length"


def test_in_stream_error_raises_UpstreamError_with_vllm_fields() -> None:
    """vLLM 0.13.0's in-stream error event raises UpstreamError with message, type and code."""
    with pytest.raises(UpstreamError) as caught:
        parse_chat_chunk(ServerSentEvent(VLLM_ERROR))
    error = caught.value
    assert (error.message, error.type, error.code, error.param) == (
        "the engine died",
        "InternalServerError",
        500,
        None,
    )
    assert "InternalServerError" in str(error)
    assert "the engine died" in str(error)


def test_older_flat_error_shape_raises_UpstreamError() -> None:
    """Older vLLM's ``{"object": "error", "message": ...}`` is an upstream error too."""
    body = '{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}'
    with pytest.raises(UpstreamError, match="bad") as caught:
        parse_chat_chunk(ServerSentEvent(body))
    assert caught.value.code == 400


def test_error_given_as_a_string_raises_UpstreamError() -> None:
    """``{"error": "text"}`` gives an upstream error carrying that text."""
    with pytest.raises(UpstreamError, match="overloaded"):
        parse_chat_chunk(ServerSentEvent('{"error": "overloaded"}'))


def test_malformed_JSON_raises_ChunkParseError_quoting_the_event() -> None:
    """Truncated JSON is a ChunkParseError that says it is not JSON and shows the data."""
    with pytest.raises(ChunkParseError, match=r"not valid JSON.*\{\"choices\"") as caught:
        parse_chat_chunk(ServerSentEvent('{"choices": [{"index": 0,'))
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ('{"choices": "none"}', r"\$\.choices"),
        (
            '{"choices": [{"index": 0, "delta": {"content": 5}}]}',
            r"\$\.choices\[0\]\.delta\.content",
        ),
        ('{"choices": [{"index": 0}]}', "delta"),
        ('{"choices": [{"delta": {}}]}', "index"),
        ('{"id": "x"}', "choices"),
        (
            '{"choices": [], "usage": {"completion_tokens": "many"}}',
            r"\$\.usage\.completion_tokens",
        ),
        ("[1, 2]", "object"),
        ('"text"', "object"),
        ("null", "object"),
    ],
)
def test_wrong_shape_raises_ChunkParseError_naming_what_and_where(data: str, where: str) -> None:
    """Valid JSON that is not a chunk raises ChunkParseError naming the field at fault."""
    with pytest.raises(ChunkParseError, match=where):
        parse_chat_chunk(ServerSentEvent(data))


def test_long_bad_events_are_quoted_shortened() -> None:
    """An error message quotes at most the first 200 characters of the event."""
    with pytest.raises(ChunkParseError) as caught:
        parse_chat_chunk(ServerSentEvent("x" * 5000))
    assert len(str(caught.value)) < 400


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_chunkish = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "index": _json_values | st.integers(0, 3),
                    "delta": _json_values
                    | st.fixed_dictionaries(
                        {},
                        optional={
                            "content": _json_values | st.text(),
                            "tool_calls": _json_values,
                            "role": _json_values,
                        },
                    ),
                    "finish_reason": _json_values,
                },
            ),
            max_size=2,
        )
        | _json_values,
        "usage": _json_values,
        "error": _json_values,
    },
)


@given(st.one_of(_json_values, _chunkish).map(json.dumps) | st.text())
def test_any_event_data_parses_or_raises_one_of_our_errors(data: str) -> None:
    """Whatever the data, the result is a chunk, DONE, ChunkParseError or UpstreamError;
    never a KeyError, TypeError or a library's own exception."""
    try:
        result = parse_chat_chunk(ServerSentEvent(data))
    except (ChunkParseError, UpstreamError):
        return
    assert result is DONE or isinstance(result, ChatChunk)


@given(st.text(), st.text())
def test_valid_chunks_keep_their_text_exactly(content: str, reasoning: str) -> None:
    """Partner of the no-crash property (a parser that always raised would pass it): any text
    in a well-formed chunk comes back unchanged."""
    body = {"choices": [{"index": 0, "delta": {"content": content, "reasoning": reasoning}}]}
    chunk = parse(json.dumps(body))
    assert (chunk.content, chunk.reasoning) == (content, reasoning)


def test_parse_chat_chunks_parses_a_read_and_stops_at_DONE() -> None:
    """The batch parser appends every chunk of a read with the read's stamp and reports
    [DONE], leaving events after it unparsed."""
    events = [ServerSentEvent(VLLM_ROLE), ServerSentEvent(VLLM_CONTENT), ServerSentEvent("[DONE]")]
    into: list[ChatChunk] = []
    assert parse_chat_chunks([*events, ServerSentEvent("not json")], into, arrival=3.0)
    assert [(c.content, c.arrival) for c in into] == [("", 3.0), ("Hello", 3.0)]


def test_parse_chat_chunks_without_DONE_returns_False() -> None:
    """A read that does not end the stream returns False."""
    into: list[ChatChunk] = []
    assert not parse_chat_chunks([ServerSentEvent(VLLM_CONTENT)], into)
    assert len(into) == 1


def test_parse_chat_chunks_keeps_the_chunks_before_an_error() -> None:
    """Chunks before an error event are appended before the error is raised."""
    into: list[ChatChunk] = []
    with pytest.raises(UpstreamError):
        parse_chat_chunks([ServerSentEvent(VLLM_CONTENT), ServerSentEvent(VLLM_ERROR)], into)
    assert [c.content for c in into] == ["Hello"]


_OUTPUT = CHUNK_CHOICES | CHUNK_OUTPUT


@pytest.mark.parametrize(
    ("data", "flags"),
    [
        (VLLM_ROLE, CHUNK_CHOICES),  # empty content is no output
        (VLLM_REASONING, _OUTPUT),
        ('{"choices":[{"index":0,"delta":{"reasoning_content":"hmm"}}]}', _OUTPUT),
        (VLLM_TOOL_START, _OUTPUT),
        (VLLM_TOOL_ARGS, _OUTPUT),
        (VLLM_CONTENT, _OUTPUT | CHUNK_CONTENT),
        (VLLM_FINISH_WITH_TEXT, _OUTPUT | CHUNK_CONTENT),
        ('{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}', CHUNK_CHOICES),
        (VLLM_USAGE, 0),
    ],
)
def test_flags_say_what_a_chunk_carries(data: str, flags: int) -> None:
    """A choice sets CHOICES; reasoning, a tool call or content sets OUTPUT; content CONTENT."""
    chunk = parse(data)
    assert chunk.flags == flags
    assert chunk.has_output is bool(flags & CHUNK_OUTPUT)
    assert chunk.has_content is bool(flags & CHUNK_CONTENT)


def test_flags_cover_every_choice_not_only_the_first() -> None:
    """With ``n`` > 1, content on choice 1 alone still marks the chunk as carrying content."""
    chunk = parse(
        '{"choices":[{"index":0,"delta":{"content":""}},{"index":1,"delta":{"content":"x"}}]}'
    )
    assert chunk.content == ""
    assert chunk.flags == CHUNK_CHOICES | CHUNK_OUTPUT | CHUNK_CONTENT
