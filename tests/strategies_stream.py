"""Hypothesis strategies and a reference decoder for the streaming layer's tests.

``reference_decode`` is a deliberately literal, whole-stream reading of the WHATWG rules (decode
everything, cut it into lines, apply each line in turn): slow and obviously right, so the
incremental decoder can be checked against it on arbitrary bytes.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st

from gptoss_modal.sse import ServerSentEvent, encode_event

_LINE_END = re.compile(r"\r\n|\r|\n")


def reference_decode(stream: bytes) -> list[ServerSentEvent]:
    """The events of a complete stream, following the WHATWG steps one line at a time."""
    text = stream.decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    events: list[ServerSentEvent] = []
    data_buffer = ""
    event_type = ""
    last_event_id = ""
    retry: int | None = None
    position = 0
    while (end := _LINE_END.search(text, position)) is not None:  # an unended last line is lost
        line = text[position : end.start()]
        position = end.end()
        if line == "":
            if data_buffer:
                events.append(
                    ServerSentEvent(data_buffer[:-1], event_type or "message", last_event_id, retry)
                )
            data_buffer, event_type, retry = "", "", None
            continue
        if line.startswith(":"):
            continue
        if ":" in line:
            name, value = line.split(":", 1)
            if value.startswith(" "):
                value = value[1:]
        else:
            name, value = line, ""
        if name == "data":
            data_buffer += value + "\n"
        elif name == "event":
            event_type = value
        elif name == "id" and "\0" not in value:
            last_event_id = value
        elif name == "retry" and value and all(c in "0123456789" for c in value):
            retry = int(value)
    return events


def split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given offsets (clamped and sorted), keeping every byte in order."""
    points = sorted({min(max(c, 0), len(data)) for c in cuts})
    pieces, start = [], 0
    for point in [*points, len(data)]:
        pieces.append(data[start:point])
        start = point
    return pieces


# Field text: anything but line breaks (surrogates cannot be encoded to UTF-8).
field_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"))
# Data may hold LF (it becomes several data: lines); CR would come back as LF, so it is left out.
data_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r"))


@st.composite
def event_specs(draw: st.DrawFn) -> tuple[str, str | None, str | None, int | None]:
    """(data, event, id, retry) for :func:`encode_event`; ``None`` fields are not written."""
    event = draw(st.none() | field_text)
    event_id = draw(st.none() | field_text.filter(lambda s: "\0" not in s))
    retry = draw(st.none() | st.integers(min_value=0, max_value=10**9))
    return draw(data_text), event, event_id, retry


def expected_events(
    specs: list[tuple[str, str | None, str | None, int | None]],
) -> list[ServerSentEvent]:
    """What decoding the encoded specs must give: ids persist, an empty type means message."""
    events, last_id = [], ""
    for data, event, event_id, retry in specs:
        if event_id is not None:
            last_id = event_id
        events.append(ServerSentEvent(data, event or "message", last_id, retry))
    return events


def encode_specs(specs: list[tuple[str, str | None, str | None, int | None]]) -> bytes:
    return b"".join(
        encode_event(data, event=event, id=event_id, retry=retry)
        for data, event, event_id, retry in specs
    )


# Bytes that stress the decoder: line ends, colons, spaces, field names, UTF-8 pieces, a BOM.
_PIECES = [
    b"\r", b"\n", b"\r\n", b":", b" ", b"data", b"event", b"id", b"retry", b"12", b"\x00",
    b"\xef\xbb\xbf", b"\xc3", b"\xa9", b"\xe2\x82\xac", b"\xf0\x9f", b"\x98\x80", b"x", b"[DONE]",
]  # fmt: skip
wire_bytes = st.one_of(
    st.binary(max_size=300),
    st.lists(st.sampled_from(_PIECES), max_size=80).map(b"".join),
)
