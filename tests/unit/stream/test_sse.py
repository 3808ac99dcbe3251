"""SSEDecoder: every WHATWG event-stream rule as a named test, and properties over any bytes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import ServerSentEvent, SSEDecodeError, SSEDecoder, encode_event
from tests.strategies_stream import (
    encode_specs,
    event_specs,
    expected_events,
    field_text,
    reference_decode,
    split_at,
    wire_bytes,
)


def decode(*reads: bytes) -> list[ServerSentEvent]:
    """Feed each read in turn, then close; every event in order."""
    decoder = SSEDecoder()
    events = [event for read in reads for event in decoder.feed(read)]
    decoder.close()
    return events


def data_of(*reads: bytes) -> list[str]:
    return [event.data for event in decode(*reads)]


# --- line ends ---


def test_lines_end_at_LF() -> None:
    """LF ends a line; a blank line dispatches the event."""
    assert data_of(b"data: a\n\ndata: b\n\n") == ["a", "b"]


def test_lines_end_at_CRLF() -> None:
    """CRLF is one line end, not two (so it is not a blank line)."""
    assert data_of(b"data: a\r\ndata: b\r\n\r\n") == ["a\nb"]


def test_lines_end_at_CR() -> None:
    """A lone CR ends a line."""
    assert data_of(b"data: a\rdata: b\r\r") == ["a\nb"]


def test_mixed_line_ends_in_one_stream() -> None:
    """CR, LF and CRLF may be mixed, even within one event."""
    assert data_of(b"data: a\rdata: b\ndata: c\r\n\r") == ["a\nb\nc"]


def test_CR_at_end_of_one_read_and_LF_at_start_of_next_are_one_line_end() -> None:
    """A CRLF split across two reads ends one line, so the event is not cut in two."""
    assert data_of(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == ["a\nb"]


def test_CR_at_end_of_a_read_ends_the_line_at_once() -> None:
    """An event whose blank line ends with a CR is dispatched by that read, not the next."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r\r") == [ServerSentEvent("a")]
    assert decoder.feed(b"\ndata: b\n\n") == [ServerSentEvent("b")]


def test_LF_after_CR_in_the_same_read_is_not_a_blank_line() -> None:
    """Only an LF that directly follows a CR joins it; a later LF is a line end of its own."""
    assert data_of(b"data: a\r\n\n") == ["a"]


# --- comments and fields ---


def test_comment_lines_are_ignored() -> None:
    """A line starting with a colon is a comment, even between data lines."""
    assert data_of(b": ping\ndata: a\n:another\ndata: b\n\n") == ["a\nb"]


def test_comment_only_block_dispatches_nothing() -> None:
    """A keep-alive comment followed by a blank line is no event."""
    assert decode(b": keep-alive\n\n") == []


def test_line_without_colon_is_a_field_name_with_empty_value() -> None:
    """``data`` alone is the data field with an empty value."""
    assert data_of(b"data\ndata\n\n") == ["\n"]


def test_one_leading_space_is_stripped_from_the_value() -> None:
    """Exactly one space after the colon is removed; further spaces are data."""
    assert data_of(b"data:  two spaces\n\ndata:none\n\n") == [" two spaces", "none"]


def test_colons_after_the_first_belong_to_the_value() -> None:
    """The field name ends at the first colon; later colons stay in the value."""
    assert data_of(b'data: {"a": "b:c"}\n\n') == ['{"a": "b:c"}']


def test_several_data_lines_are_joined_with_LF() -> None:
    """Each data line adds its value and a LF; the final LF is removed."""
    assert data_of(b"data: a\ndata:\ndata: c\n\n") == ["a\n\nc"]


def test_empty_data_line_dispatches_an_empty_event() -> None:
    """``data:`` with nothing after it is still data: an event with empty data."""
    assert decode(b"data:\n\n") == [ServerSentEvent("")]


def test_blank_line_without_data_dispatches_nothing() -> None:
    """Blank lines, and blocks with only event/id/retry fields, dispatch no event."""
    assert decode(b"\n\n\nevent: x\n\nretry: 10\n\n") == []


def test_event_field_sets_the_type() -> None:
    """``event:`` names the event's type; the last one in a block wins."""
    assert decode(b"event: a\nevent: ping\ndata: x\n\n") == [ServerSentEvent("x", "ping")]


def test_empty_or_missing_event_type_means_message() -> None:
    """Without an event field, or with an empty one, the type is ``message``."""
    assert [e.event for e in decode(b"data: a\n\nevent:\ndata: b\n\n")] == ["message", "message"]


def test_event_type_does_not_carry_over_to_the_next_event() -> None:
    """The type buffer is reset when an event is dispatched."""
    assert [e.event for e in decode(b"event: x\ndata: a\n\ndata: b\n\n")] == ["x", "message"]


def test_id_field_sets_the_last_event_id_which_persists() -> None:
    """An id stays the last event ID for later events until another id replaces it."""
    events = decode(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\nid\ndata: d\n\n")
    assert [e.id for e in events] == ["1", "1", "2", ""]


def test_id_in_a_block_without_data_still_sets_the_last_event_id() -> None:
    """The last event ID is updated at the blank line even when no event is dispatched."""
    assert decode(b"id: 7\n\ndata: a\n\n") == [ServerSentEvent("a", id="7")]


def test_id_containing_NUL_is_ignored() -> None:
    """An id whose value contains U+0000 does not change the last event ID."""
    assert decode(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")[1].id == "1"


def test_retry_with_only_ASCII_digits_is_kept() -> None:
    """``retry: 3000`` gives the event a reconnection time of 3000 ms."""
    assert decode(b"retry: 3000\ndata: a\n\n") == [ServerSentEvent("a", retry=3000)]


@pytest.mark.parametrize("value", [b"", b"1.5", b"-1", b"  10", b"10ms", "٣".encode()])
def test_retry_with_anything_but_ASCII_digits_is_ignored(value: bytes) -> None:
    """Empty, signed, fractional, padded or non-ASCII-digit retry values are ignored."""
    assert decode(b"retry:" + value + b"\ndata: a\n\n") == [ServerSentEvent("a")]


def test_unknown_fields_are_ignored() -> None:
    """A field that is not data, event, id or retry changes nothing."""
    assert decode(b"foo: bar\ndata: a\nDATA: b\ndata : c\n\n") == [ServerSentEvent("a")]


def test_field_names_are_case_sensitive() -> None:
    """``Data`` and ``EVENT`` are unknown fields, not data or event."""
    assert decode(b"Data: a\nEVENT: b\ndata: c\n\n") == [ServerSentEvent("c")]


# --- encoding ---


def test_UTF8_split_across_reads_is_decoded_whole() -> None:
    """A multi-byte character cut between reads comes out as one character."""
    assert data_of(b"data: caf\xc3", b"\xa9 \xe2", b"\x82", b"\xac\n\n") == ["café €"]


def test_malformed_UTF8_becomes_the_replacement_character() -> None:
    """Invalid bytes decode to U+FFFD instead of raising."""
    assert data_of(b"data: a\xffb\xc3\n\n") == ["a\ufffdb\ufffd"]


def test_BOM_at_the_start_is_dropped() -> None:
    """A UTF-8 byte order mark before the first line is not part of the field name."""
    assert data_of(b"\xef\xbb\xbfdata: a\n\n") == ["a"]


def test_BOM_split_across_reads_is_dropped() -> None:
    """The byte order mark is recognised even when it arrives a byte at a time."""
    assert data_of(b"\xef", b"\xbb", b"\xbf", b"data: a\n\n") == ["a"]


def test_only_one_BOM_is_dropped() -> None:
    """A second byte order mark makes the first field name unknown, as in a browser."""
    assert decode(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n") == [ServerSentEvent("b")]


def test_BOM_after_the_start_is_data() -> None:
    """U+FEFF anywhere but the very start is an ordinary character."""
    assert data_of(b"data: \xef\xbb\xbfa\n\n") == ["\ufeffa"]


# --- end of stream ---


def test_event_not_closed_by_a_blank_line_is_discarded_at_end_of_stream() -> None:
    """An unfinished event is not dispatched; close() returns its text."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [ServerSentEvent("a")]
    assert decoder.close() == "data: b\n"


def test_unended_last_line_is_discarded_at_end_of_stream() -> None:
    """A last line without a line end is pending data, dropped at close."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a") == []
    assert decoder.close() == "data: a"


def test_close_after_a_complete_stream_discards_nothing() -> None:
    """close() returns an empty string when the stream ended on an event boundary."""
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n\n")
    assert decoder.close() == ""


def test_feed_after_close_raises_SSEDecodeError() -> None:
    """Feeding a closed decoder is a typed error that says what happened."""
    decoder = SSEDecoder()
    decoder.close()
    with pytest.raises(SSEDecodeError, match=r"after close\(\)"):
        decoder.feed(b"data: a\n\n")


def test_close_twice_is_harmless() -> None:
    """A second close() returns nothing and does not raise."""
    decoder = SSEDecoder()
    decoder.feed(b"data: a")
    decoder.close()
    assert decoder.close() == ""


def test_vLLM_stream_decodes_to_its_data_lines() -> None:
    """vLLM's framing, ``data: <json>`` events then ``[DONE]``, gives one event per chunk."""
    body = b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n'
    assert data_of(body) == ['{"a":1}', '{"b":2}', "[DONE]"]


def test_data_line_whose_blank_line_has_not_arrived_is_not_dispatched() -> None:
    """An event is dispatched by its blank line, even when its data line came in an earlier read."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b\n") == [ServerSentEvent("a")]
    assert decoder.feed(b"\n") == [ServerSentEvent("b")]


def test_vLLM_shaped_read_keeps_the_last_event_id() -> None:
    """Events of a read made only of data lines carry the id set by an earlier event."""
    decoder = SSEDecoder()
    decoder.feed(b"id: 9\ndata: a\n\n")
    assert decoder.feed(b"data: b\n\ndata: c\n\n") == [
        ServerSentEvent("b", id="9"),
        ServerSentEvent("c", id="9"),
    ]


def test_last_event_id_property_reports_the_stream_state() -> None:
    """``last_event_id`` is the last id seen, even one set in a block without data."""
    decoder = SSEDecoder()
    decoder.feed(b"id: abc\n\n")
    assert decoder.last_event_id == "abc"


# --- the encoder ---


def test_encode_event_writes_fields_then_one_data_line_per_line() -> None:
    """encode_event writes event, id, retry, then data lines, then the blank line."""
    assert encode_event("a\nb", event="e", id="1", retry=5) == (
        b"event: e\nid: 1\nretry: 5\ndata: a\ndata: b\n\n"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"event": "a\nb"}, "event type"),
        ({"id": "a\rb"}, "id"),
        ({"id": "a\0b"}, "NUL"),
        ({"retry": -1}, "retry"),
    ],
)
def test_encode_event_rejects_fields_it_cannot_represent(
    kwargs: dict[str, object], match: str
) -> None:
    """Line breaks in event or id, NUL in id and a negative retry raise ValueError."""
    with pytest.raises(ValueError, match=match):
        encode_event("x", **kwargs)  # type: ignore[arg-type]


# --- properties ---


@given(wire_bytes, st.lists(st.integers(min_value=0, max_value=300), max_size=12))
def test_any_split_into_reads_gives_the_same_events_as_one_read(
    stream: bytes, cuts: list[int]
) -> None:
    """Where the reads are cut never changes the events (nor what close() discards)."""
    whole = SSEDecoder()
    expected = whole.feed(stream)
    split = SSEDecoder()
    got = [event for piece in split_at(stream, cuts) for event in split.feed(piece)]
    assert got == expected
    assert split.close() == whole.close()


@given(wire_bytes)
def test_byte_by_byte_reads_give_the_same_events_as_one_read(stream: bytes) -> None:
    """Feeding one byte at a time gives exactly the events of feeding everything at once."""
    whole = SSEDecoder()
    expected = whole.feed(stream)
    decoder = SSEDecoder()
    got = [event for i in range(len(stream)) for event in decoder.feed(stream[i : i + 1])]
    assert got == expected
    assert decoder.close() == whole.close()


@given(wire_bytes, st.lists(st.integers(min_value=0, max_value=300), max_size=12))
def test_decoder_agrees_with_the_literal_reference_on_any_bytes(
    stream: bytes, cuts: list[int]
) -> None:
    """Partner of the split properties (a decoder that returns nothing would pass those): the
    events equal a line-by-line reading of the WHATWG steps over the whole stream."""
    decoder = SSEDecoder()
    got = [event for piece in split_at(stream, cuts) for event in decoder.feed(piece)]
    assert got == reference_decode(stream)


@given(st.lists(event_specs(), max_size=8), st.lists(st.integers(0, 2000), max_size=8))
def test_encode_then_decode_round_trips(
    specs: list[tuple[str, str | None, str | None, int | None]], cuts: list[int]
) -> None:
    """Encoded events decode back to themselves, however the bytes are split."""
    stream = encode_specs(specs)
    decoder = SSEDecoder()
    got = [event for piece in split_at(stream, cuts) for event in decoder.feed(piece)]
    assert got == expected_events(specs)
    assert decoder.close() == ""


@given(
    st.lists(st.tuples(field_text, st.sampled_from(["data: ", "data:", "data:  ", ": c\ndata: "]))),
    st.lists(st.integers(min_value=0, max_value=2000), max_size=12),
)
def test_vLLM_shaped_streams_agree_with_the_reference_however_split(
    events: list[tuple[str, str]], cuts: list[int]
) -> None:
    """Streams of one-data-line events (vLLM's shape, which has a fast path), mixed with close
    variants (no space, two spaces, a comment first), decode as the reference says."""
    stream = "".join(prefix + text + "\n\n" for text, prefix in events).encode()
    decoder = SSEDecoder()
    got = [event for piece in split_at(stream, cuts) for event in decoder.feed(piece)]
    assert got == reference_decode(stream)


@given(wire_bytes, st.lists(st.integers(min_value=0, max_value=300), max_size=12))
def test_decoder_never_raises_on_arbitrary_bytes(stream: bytes, cuts: list[int]) -> None:
    """Any bytes, split anyhow, decode without an exception, and close() ends cleanly."""
    decoder = SSEDecoder()
    for piece in split_at(stream, cuts):
        decoder.feed(piece)
    assert isinstance(decoder.close(), str)


@given(wire_bytes)
def test_decoder_raises_only_its_own_error_after_close(stream: bytes) -> None:
    """Partner of the no-raise property: misuse (feeding after close) is always SSEDecodeError."""
    decoder = SSEDecoder()
    decoder.feed(stream)
    decoder.close()
    with pytest.raises(SSEDecodeError):
        decoder.feed(stream)
