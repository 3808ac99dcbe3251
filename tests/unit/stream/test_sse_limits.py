"""SSEDecoder's bounds: one event's size limit, comments dropped as they complete, any split.

Each test here failed before the decoder kept a scan offset and a size limit: it had no
``max_event_chars`` and kept every comment line of an unfinished event until its blank line.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import ChatChunk, ChatChunkDecoder, ConfigError, SSEDecodeError, SSEDecoder
from gptoss_modal.stream.sse import DEFAULT_MAX_EVENT_CHARS, ServerSentEvent
from tests.strategies_stream import VLLM_CONTENT, split_at, wire_bytes


def run(reads: list[bytes], limit: int) -> tuple[list[ServerSentEvent], str | None]:
    """Every event the reads give before any limit error, and that error's text (or None)."""
    decoder = SSEDecoder(max_event_chars=limit)
    events: list[ServerSentEvent] = []
    try:
        for read in reads:
            events += decoder.feed(read)
        decoder.close()
    except SSEDecodeError as exc:
        return events + exc.events, str(exc)
    return events, None


def test_the_default_limit_is_16_MiB_of_ASCII() -> None:
    """The documented default: 16 Mi characters, far above any real chunk."""
    assert DEFAULT_MAX_EVENT_CHARS == 16 * 1024 * 1024
    assert SSEDecoder().max_event_chars == DEFAULT_MAX_EVENT_CHARS


def test_an_event_of_exactly_the_limit_is_accepted_and_one_more_is_not() -> None:
    """The limit counts the event's line characters; limit + 1 raises, naming the limit."""
    line = b"data: " + b"x" * 94  # 100 characters
    assert run([line + b"\n\n"], 100) == ([ServerSentEvent("x" * 94)], None)
    events, error = run([line + b"x\n\n"], 100)
    assert events == []
    assert error is not None
    assert "max_event_chars=100" in error


def test_a_line_without_a_line_end_fails_at_the_limit_however_it_is_cut() -> None:
    """An event that never ends raises once it passes the limit, not at end of stream."""
    decoder = SSEDecoder(max_event_chars=1000)
    decoder.feed(b"data: ")
    for _ in range(99):
        assert decoder.feed(b"y" * 10) == []  # 996 characters so far
    with pytest.raises(SSEDecodeError, match=r"max_event_chars=1000 characters \(1006 so far"):
        decoder.feed(b"y" * 10)


def test_data_lines_without_a_blank_line_fail_at_the_limit() -> None:
    """Many data lines and no blank line: the event grows past the limit and raises."""
    decoder = SSEDecoder(max_event_chars=10_000)
    for _ in range(909):
        assert decoder.feed(b"data: 12345\n") == []  # 9999 characters so far
    with pytest.raises(SSEDecodeError, match="max_event_chars=10000"):
        decoder.feed(b"data: 12345\n")


def test_the_decoder_is_closed_after_the_limit_error() -> None:
    """After the limit error the event is dropped and the decoder refuses more bytes."""
    decoder = SSEDecoder(max_event_chars=10)
    with pytest.raises(SSEDecodeError):
        decoder.feed(b"data: 0123456789\n\n")
    with pytest.raises(SSEDecodeError, match=r"after close\(\)"):
        decoder.feed(b"data: a\n\n")


def test_events_completed_before_the_overflow_in_the_same_read_are_kept() -> None:
    """The events a read completed before the oversized one ride on the error's events."""
    events, error = run([b"data: a\n\nevent: e\ndata: b\n\ndata: " + b"z" * 50], 20)
    assert [event.data for event in events] == ["a", "b"]
    assert error is not None


def test_comment_lines_do_not_count_towards_the_limit() -> None:
    """A megabyte of heartbeat comments before a reply is no event at all: nothing raises."""
    heartbeats = b": keepalive\n" * 100_000
    events, error = run([heartbeats[i : i + 4096] for i in range(0, len(heartbeats), 4096)]
                        + [b"data: ok\n\n"], 64)  # fmt: skip
    assert (events, error) == ([ServerSentEvent("ok")], None)


def test_one_long_comment_line_cut_into_reads_is_not_kept() -> None:
    """A comment line is recognised by its first character and never held, however long."""
    decoder = SSEDecoder(max_event_chars=16)
    decoder.feed(b": " + b"c" * 100)
    for _ in range(100):
        assert decoder.feed(b"c" * 100) == []
    assert decoder.feed(b"\ndata: ok\n\n") == [ServerSentEvent("ok")]


def test_comment_lines_of_an_unfinished_event_are_dropped_as_they_complete() -> None:
    """Only the event's own lines are pending: close() gives them without the comments."""
    decoder = SSEDecoder()
    decoder.feed(b": one\ndata: a\n: two\n: three")
    assert decoder.close() == "data: a\n"


@pytest.mark.parametrize("limit", [0, -1, 1.5, "16", True, None])
def test_a_limit_that_is_not_a_positive_int_is_a_ConfigError(limit: object) -> None:
    """max_event_chars must be a positive int; the error names it."""
    with pytest.raises(ConfigError, match="max_event_chars"):
        SSEDecoder(max_event_chars=limit)  # type: ignore[arg-type]


def test_the_chunk_decoder_keeps_the_chunks_before_an_oversized_event() -> None:
    """ChatChunkDecoder appends the read's good chunks, then raises the limit error."""
    limit = len(VLLM_CONTENT) + 10
    decoder = ChatChunkDecoder(max_event_chars=limit)
    into: list[ChatChunk] = []
    good = f"data: {VLLM_CONTENT}\n\n".encode()
    with pytest.raises(SSEDecodeError, match="max_event_chars"):
        decoder.feed(good * 2 + b"data: " + b"x" * limit, into)
    assert len(into) == 2


@given(
    wire_bytes, st.lists(st.integers(min_value=0, max_value=300), max_size=12), st.integers(1, 80)
)
def test_the_limit_trips_the_same_way_however_the_stream_is_split(
    stream: bytes, cuts: list[int], limit: int
) -> None:
    """Split anyhow, the same events come before the same limit error (or none)."""
    whole = run([stream], limit)
    split = run(split_at(stream, cuts), limit)
    assert split[0] == whole[0]
    assert (split[1] is None) == (whole[1] is None)


def test_a_line_continued_from_an_earlier_read_counts_toward_the_limit() -> None:
    """Nine characters cut 2 + 7 (the second read within the limit alone) still trip a limit
    of 8, as the unsplit line does (hypothesis found the fast path missed it)."""
    stream = b"\x00" * 9 + b"\r"
    assert run([stream], 8)[1] is not None
    assert run(split_at(stream, [2]), 8)[1] is not None


@given(wire_bytes, st.lists(st.integers(min_value=0, max_value=300), max_size=12))
def test_a_limit_above_the_stream_changes_nothing(stream: bytes, cuts: list[int]) -> None:
    """The partner property: with room for the whole stream no error, the same events."""
    unlimited = SSEDecoder()
    expected = [event for read in split_at(stream, cuts) for event in unlimited.feed(read)]
    assert run(split_at(stream, cuts), len(stream) + 1) == (expected, None)
