"""ChatChunkDecoder: the same chunks and errors as SSEDecoder + parse_chat_chunks, split anyhow."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import (
    ChatChunk,
    ChatChunkDecoder,
    ChunkParseError,
    GptossModalError,
    SSEDecodeError,
    SSEDecoder,
    UpstreamError,
    parse_chat_chunks,
)
from tests.strategies_stream import (
    VLLM_CONTENT,
    VLLM_ERROR,
    VLLM_REASONING,
    VLLM_ROLE,
    VLLM_USAGE,
    delta_scripts,
    render_vllm_chunk,
    split_at,
)

cuts_st = st.lists(st.integers(min_value=0, max_value=4000), max_size=12)


def event(data: str, prefix: str = "data: ") -> bytes:
    return f"{prefix}{data}\n\n".encode()


def layered(reads: list[bytes]) -> tuple[list[ChatChunk], bool, Any, str]:
    """The reference: SSEDecoder.feed, then parse_chat_chunks, read by read."""
    sse, done, error = SSEDecoder(), False, None
    chunks: list[ChatChunk] = []
    try:
        for i, data in enumerate(reads):
            if parse_chat_chunks(sse.feed(data), chunks, arrival=float(i)):
                done = True
                break
    except GptossModalError as exc:
        error = (type(exc), str(exc))
    return chunks, done, error, sse.close()


def fused(reads: list[bytes]) -> tuple[list[ChatChunk], bool, Any, str]:
    decoder, done, error = ChatChunkDecoder(), False, None
    chunks: list[ChatChunk] = []
    try:
        for i, data in enumerate(reads):
            if decoder.feed(data, chunks, arrival=float(i)):
                done = True
                break
    except GptossModalError as exc:
        error = (type(exc), str(exc))
    return chunks, done, error, decoder.close()


@given(st.lists(delta_scripts(), min_size=1, max_size=3), cuts_st, st.booleans())
def test_vllm_streams_decode_as_the_layered_path_however_split(
    scripts: list[list[dict[str, Any]]], cuts: list[int], done: bool
) -> None:
    """A vLLM stream, cut into reads anywhere, gives the chunks (with each read's arrival) that
    SSEDecoder + parse_chat_chunks give for the same reads."""
    stream = b"".join(event(render_vllm_chunk(s)) for script in scripts for s in script)
    stream += event(VLLM_USAGE) + (event("[DONE]") if done else b"")
    reads = split_at(stream, cuts)
    got = fused(reads)
    assert got == layered(reads)
    assert got[1] is done
    assert len(got[0]) == sum(map(len, scripts)) + 1


_pieces = st.sampled_from(
    [
        event(VLLM_ROLE),
        event(VLLM_REASONING),
        event(VLLM_CONTENT),
        event(VLLM_USAGE),
        event(VLLM_CONTENT, "data:"),  # no space: not the plain shape
        event(VLLM_ERROR),
        event('{"choices": 3}'),
        event("{not json"),
        event("[DONE]"),
        b": keep-alive\n\n",
        b"id: 7\n",
        b"event: note\ndata: " + VLLM_CONTENT.encode() + b"\n\n",
        b"data: " + VLLM_CONTENT.encode() + b"\r\n\r\n",
        b"\r",
        b"\n",
        'data: {"choices":[],"id":"é"}\n\n'.encode(),
    ]
)


@given(st.lists(_pieces, max_size=12), cuts_st, st.booleans())
def test_any_mix_of_events_and_errors_matches_the_layered_path(
    pieces: list[bytes], cuts: list[int], piece_per_read: bool
) -> None:
    """Partner of the vLLM-shape property (a decoder that only knew that shape would fail it):
    comments, ids, CR line ends, other event types, bad JSON, wrong shapes, in-stream errors
    and [DONE] anywhere give the same chunks, end, error type and message as the layered path,
    read in arbitrary cuts or one piece (mostly one event) per read."""
    reads = pieces if piece_per_read else split_at(b"".join(pieces), cuts)
    assert fused(reads) == layered(reads)


def test_chunks_before_a_bad_event_in_the_same_read_are_kept() -> None:
    """A read with good chunks then malformed JSON appends the good ones, then raises."""
    decoder = ChatChunkDecoder()
    chunks: list[ChatChunk] = []
    with pytest.raises(ChunkParseError, match="not valid JSON"):
        decoder.feed(event(VLLM_ROLE) + event(VLLM_CONTENT) + event("{oops"), chunks)
    assert [c.content for c in chunks] == ["", "Hello"]


def test_an_in_stream_error_raises_UpstreamError_after_the_chunks_before_it() -> None:
    """vLLM's error event in a plain read raises UpstreamError; earlier chunks stay."""
    decoder = ChatChunkDecoder()
    chunks: list[ChatChunk] = []
    with pytest.raises(UpstreamError, match="the engine died"):
        decoder.feed(event(VLLM_CONTENT) + event(VLLM_ERROR), chunks)
    assert len(chunks) == 1


def test_DONE_ends_the_stream_and_later_bytes_are_not_parsed() -> None:
    """feed returns True at [DONE]; later reads, even garbage, change nothing."""
    decoder = ChatChunkDecoder()
    chunks: list[ChatChunk] = []
    assert not decoder.feed(event(VLLM_CONTENT), chunks)
    assert decoder.feed(event(VLLM_USAGE) + event("[DONE]") + event("{junk"), chunks)
    assert decoder.done
    assert decoder.feed(event("{more junk"), chunks)
    assert len(chunks) == 2


def test_every_chunk_of_a_read_gets_that_reads_arrival() -> None:
    """The arrival passed with a read is stamped on each chunk it completed."""
    decoder = ChatChunkDecoder()
    chunks: list[ChatChunk] = []
    decoder.feed(event(VLLM_ROLE) + event(VLLM_CONTENT)[:20], chunks, arrival=1.5)
    decoder.feed(event(VLLM_CONTENT)[20:] + event(VLLM_USAGE), chunks, arrival=2.5)
    assert [c.arrival for c in chunks] == [1.5, 2.5, 2.5]


def test_close_returns_the_discarded_unfinished_event() -> None:
    """close() hands back the text of an event cut off by the end of the stream."""
    decoder = ChatChunkDecoder()
    chunks: list[ChatChunk] = []
    decoder.feed(event(VLLM_CONTENT) + b'data: {"choi', chunks)
    assert decoder.close() == 'data: {"choi'
    with pytest.raises(SSEDecodeError):
        decoder.feed(b"data: more\n\n", chunks)


def test_plain_lines_keep_the_last_event_id() -> None:
    """feed_plain's lines stand for events with the stream's last event id."""
    sse = SSEDecoder()
    assert sse.feed(b"id: 42\ndata: " + VLLM_CONTENT.encode() + b"\n\n")[0].id == "42"
    lines, events = sse.feed_plain(event(VLLM_USAGE))
    assert lines == ["data: " + VLLM_USAGE]
    assert events == []
    assert sse.last_event_id == "42"


def test_too_deep_nesting_is_a_ChunkParseError_after_the_good_chunks() -> None:
    """JSON nested past msgspec's limit raises ChunkParseError (not RecursionError), and the
    chunks before it in the same read are kept."""
    deep = '{"choices":[],"x":' + "[" * 1100 + "]" * 1100 + "}"
    decoder = ChatChunkDecoder()
    chunks: list[ChatChunk] = []
    with pytest.raises(ChunkParseError, match="nested too deeply"):
        decoder.feed(event(VLLM_CONTENT) + event(deep), chunks)
    assert len(chunks) == 1
