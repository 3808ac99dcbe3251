"""A sans-IO decoder for ``text/event-stream``: bytes in, events out, no I/O.

It follows the WHATWG rules for interpreting an event stream
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation):

- lines end at CRLF, LF or CR, and a CR at the end of one read followed by an LF at the start of
  the next is one line end;
- a line starting with ``:`` is a comment; a line without ``:`` is a field name with an empty
  value; one space after the colon is removed;
- ``data`` lines are joined with ``\\n``; ``event`` sets the type (``message`` when empty);
  ``id`` sets the last event ID (ignored if it contains NUL) and persists across events;
  ``retry`` is kept only if it is all ASCII digits; other fields are ignored;
- a blank line dispatches the event, unless no ``data`` line was seen;
- the stream is UTF-8 (malformed bytes become U+FFFD, never an error), a character may be split
  across reads, and one byte order mark at the very start is dropped;
- at end of stream an event not closed by a blank line is discarded.

Each read is decoded incrementally and split into lines once; an event whose lines are all
there is interpreted at once. A read made only of vLLM's events (one ``data:`` line each) is
recognised as a whole and takes a fast path.
"""

from __future__ import annotations

import codecs
import itertools
import re
from typing import NamedTuple

from gptoss_modal._exceptions import SSEDecodeError

__all__ = ["SSEDecoder", "ServerSentEvent", "encode_event"]

_Utf8Decoder = codecs.getincrementaldecoder("utf-8-sig")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class ServerSentEvent(NamedTuple):
    """One dispatched event.

    ``id`` is the stream's last event ID when the event was dispatched (it persists from earlier
    events, as in a browser's ``EventSource``); ``retry`` is the reconnection time in
    milliseconds if this event's block carried a valid ``retry`` field.
    """

    data: str
    event: str = "message"
    id: str = ""
    retry: int | None = None


_EVENT = ServerSentEvent
_new_event = tuple.__new__  # builds an event without ServerSentEvent()'s argument handling


class SSEDecoder:
    """Turns the bytes of an event stream into events, one read at a time.

    ``feed(data)`` returns the events completed by that read; ``close()`` ends the stream and
    returns the text of the unfinished event it discarded (``""`` when the stream ended on an
    event boundary). Between reads the decoder keeps one buffer, the text of the unfinished
    event, plus what the rules carry across reads: up to three bytes of a split UTF-8 character,
    whether the last read ended with a CR, and the last event ID.
    """

    __slots__ = ("_buffer", "_closed", "_cr_ended", "_last_event_id", "_utf8")

    def __init__(self) -> None:
        self._buffer = ""  # the complete lines of the unfinished event, then its partial line
        self._utf8 = _Utf8Decoder("replace")  # "utf-8-sig" drops one BOM at the very start
        self._cr_ended = False  # the last read ended with a CR: an LF next ends the same line
        self._last_event_id = ""
        self._closed = False

    @property
    def last_event_id(self) -> str:
        """The last event ID seen so far (``""`` if none)."""
        return self._last_event_id

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Consume one read's bytes; return the events it completed, in order."""
        plain, events = self.feed_plain(data)
        if plain:
            last_id = self._last_event_id
            return [_new_event(_EVENT, (d[6:], "message", last_id, None)) for d in plain]
        return events

    def feed_plain(self, data: bytes) -> tuple[list[str], list[ServerSentEvent]]:
        """:meth:`feed` for a caller that wants only the data: ``(lines, [])`` when every event
        the read completed is one ``data: `` line (vLLM's shape; ``lines`` are those lines, the
        ``data: `` prefix included), else ``([], events)``.

        Each line ``"data: " + value`` stands for the event ``ServerSentEvent(value)`` with the
        current :attr:`last_event_id`. The chunk decoder uses it to skip building the events.
        """
        if self._closed:
            raise SSEDecodeError(
                f"SSEDecoder.feed() called after close() with {len(data)} bytes; "
                "use a new decoder for a new stream"
            )
        text = self._utf8.decode(data)
        if not text:
            return [], []
        if self._cr_ended or "\r" in text:  # vLLM ends lines with \n alone: rarely taken
            text = self._line_feeds(text)
        lines = (self._buffer + text).split("\n")
        partial = lines.pop()
        # vLLM's shape: every event one "data: <json>" line and a blank line. Checked in C over
        # the whole read, it skips the line-by-line loop below (about 30% of the decode time).
        if len(lines) % 2 and lines[-1]:  # the read ended between an event's line and its end
            partial = lines.pop() + "\n" + partial
        if len(lines) == 2:  # one event per read, as vLLM writes: the same test, spelled out
            if not lines[1] and lines[0].startswith("data: "):
                self._buffer = partial
                del lines[1]
                return lines, []
        elif not len(lines) % 2 and not any(lines[1::2]):
            data_lines = lines[::2]
            if all(map(str.startswith, data_lines, itertools.repeat("data: "))):
                self._buffer = partial
                return data_lines, []
        return [], self._events(lines, partial)

    def _line_feeds(self, text: str) -> str:
        """``text`` with every line end as ``\n``; a ``\r\n`` split across reads counts once."""
        if self._cr_ended:
            self._cr_ended = False
            if text[0] == "\n":
                text = text[1:]
        if "\r" in text:
            self._cr_ended = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    def _events(self, lines: list[str], partial: str) -> list[ServerSentEvent]:
        """The line-by-line rules, for a read that is not all vLLM-shaped events."""
        events: list[ServerSentEvent] = []
        append = events.append
        last_id = self._last_event_id
        first = ""  # the first line of the event being read ("" when none yet)
        more: list[str] = []  # its other lines (vLLM's events have none)
        for line in lines:
            if line:
                if not first:
                    first = line
                else:
                    more.append(line)
            elif first:  # a blank line ends the event
                if not more and first.startswith("data:"):  # vLLM's shape: the fast path
                    value = first[6:] if first.startswith("data: ") else first[5:]
                    append(_new_event(_EVENT, (value, "message", last_id, None)))
                else:
                    event = self._interpret([first, *more])
                    last_id = self._last_event_id
                    if event is not None:
                        append(event)
                    more = []
                first = ""
        if first:
            self._buffer = "\n".join([first, *more, partial])
        else:
            self._buffer = partial
        return events

    def close(self) -> str:
        """End the stream; return the discarded text of an unfinished event (``""`` if none).

        Feeding after ``close()`` raises :class:`SSEDecodeError`; closing twice is harmless.
        """
        if self._closed:
            return ""
        self._closed = True
        rest = self._buffer + self._utf8.decode(b"", final=True)
        self._buffer = ""
        return rest

    def _interpret(self, block: list[str]) -> ServerSentEvent | None:
        """Apply the field rules to the lines of one event; ``None`` if it had no data."""
        data: list[str] = []
        event_type = ""
        retry: int | None = None
        for line in block:
            if line.startswith(":"):
                continue  # a comment
            name, colon, value = line.partition(":")
            if colon and value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event_type = value
            elif name == "id":
                if "\0" not in value:
                    self._last_event_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                retry = int(value)
        if not data:
            return None
        return ServerSentEvent("\n".join(data), event_type or "message", self._last_event_id, retry)


def encode_event(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,
    retry: int | None = None,
) -> bytes:
    """Serialise one event as UTF-8 bytes, ending with its blank line.

    Each line of ``data`` becomes one ``data:`` line, so CR and CRLF in ``data`` come back as
    LF. Fields left as ``None`` are not written (an omitted ``id`` keeps the stream's last one).
    ``event`` and ``id`` cannot hold line breaks, nor ``id`` a NUL: they raise ``ValueError``.
    """
    lines: list[str] = []
    if event is not None:
        if _LINE_BREAK.search(event):
            raise ValueError(f"an SSE event type cannot contain a line break: {event!r}")
        lines.append(f"event: {event}")
    if id is not None:
        if _LINE_BREAK.search(id) or "\0" in id:
            raise ValueError(f"an SSE id cannot contain a line break or NUL: {id!r}")
        lines.append(f"id: {id}")
    if retry is not None:
        if retry < 0:
            raise ValueError(f"an SSE retry must be a non-negative integer, got {retry}")
        lines.append(f"retry: {retry}")
    lines.extend(f"data: {line}" for line in _LINE_BREAK.split(data))
    return ("\n".join(lines) + "\n\n").encode()
