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
from typing import Final, NamedTuple

from gptoss_modal._exceptions import ConfigError, SSEDecodeError

__all__ = ["DEFAULT_MAX_EVENT_CHARS", "SSEDecoder", "ServerSentEvent", "encode_event"]

# The most characters one unfinished event may hold (16 MiB of ASCII): vLLM's largest chunks (a
# tool call's arguments, logprobs) are kilobytes; a server that never ends its event is broken.
DEFAULT_MAX_EVENT_CHARS: Final = 16 * 1024 * 1024
_Utf8Decoder = codecs.getincrementaldecoder("utf-8-sig")
_DATA_PREFIXES = itertools.repeat("data: ")  # endless: str.startswith's second argument
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
    event boundary). Between reads the decoder keeps the unfinished event: its complete lines
    (comment lines are dropped as they complete) and the pieces of its unfinished line, plus
    what the rules carry across reads: up to three bytes of a split UTF-8 character, whether the
    last read ended with a CR, and the last event ID.

    Each character is split into lines once, so the work is linear in the input however an
    event is cut into reads. One unfinished event may hold at most ``max_event_chars``
    characters (:data:`DEFAULT_MAX_EVENT_CHARS`; comments do not count): one more raises
    :class:`SSEDecodeError` naming the limit, with the events completed before it in its
    ``events``, and the decoder is closed.
    """

    __slots__ = (
        "_closed",
        "_cr_ended",
        "_event",
        "_event_chars",
        "_last_event_id",
        "_max_chars",
        "_more",
        "_partial",
        "_partial_chars",
        "_utf8",
    )

    def __init__(self, *, max_event_chars: int = DEFAULT_MAX_EVENT_CHARS) -> None:
        if type(max_event_chars) is not int or max_event_chars < 1:
            raise ConfigError("max_event_chars", max_event_chars, "a positive number of characters")
        self._max_chars = max_event_chars
        self._event: list[str] = []  # the complete non-comment lines of the unfinished event
        self._event_chars = 0  # their length
        self._partial = ""  # the unfinished line's first piece (":" for a comment, kept no more)
        self._more: list[str] = []  # its later pieces, from reads that held no line end
        self._partial_chars = 0  # the unfinished line's length
        self._utf8 = _Utf8Decoder("replace")  # "utf-8-sig" drops one BOM at the very start
        self._cr_ended = False  # the last read ended with a CR: an LF next ends the same line
        self._last_event_id = ""
        self._closed = False

    @property
    def last_event_id(self) -> str:
        """The last event ID seen so far (``""`` if none)."""
        return self._last_event_id

    @property
    def max_event_chars(self) -> int:
        """The most characters one unfinished event may hold."""
        return self._max_chars

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
        return self._split(text)

    def _split(self, text: str) -> tuple[list[str], list[ServerSentEvent]]:
        """:meth:`feed_plain` for a read's text, its line ends already ``\n``."""
        lines = text.split("\n")
        carried = 0  # characters of an earlier read's unfinished line, now in lines[0]
        if self._partial:  # the read continues an unfinished line: only its pieces are joined
            if len(lines) == 1:
                self._grow_partial(text)
                return [], []
            lines[0] = "".join([self._partial, *self._more, lines[0]])
            carried = self._partial_chars
            self._partial, self._more, self._partial_chars = "", [], 0
        partial = lines.pop()
        event = self._event
        if event and len(event) == 1 and lines and not lines[0]:  # a read cut between an
            lines.insert(0, event.pop())  # event's line and its blank line: one more plain read
            self._event_chars = 0
        # A read no longer than the limit (with the line it continues) cannot hold an event over
        # it: only the slow path, which counts each line, sees longer ones.
        too_long = len(text) + carried > self._max_chars
        plain = None if self._event or too_long else self._plain(lines)
        if plain is None:
            events = self._events(lines)
            if partial:
                self._keep_partial(partial, events)
            return [], events
        if partial:
            if partial[0] == ":" or len(partial) + self._event_chars > self._max_chars:
                self._keep_partial(partial, plain)
            else:
                self._partial, self._partial_chars = partial, len(partial)
        return plain, []

    def _plain(self, lines: list[str]) -> list[str] | None:
        """The ``data:`` lines of a read's complete lines if they are all vLLM-shaped events
        (no event pending before them), keeping an unfinished one's line aside; else ``None``.

        vLLM's shape: every event one "data: <json>" line and a blank line. Checked in C over
        the whole read, it skips the line-by-line loop (about 30% of the decode time).
        """
        count = len(lines)
        if count == 2:  # one event per read, as vLLM writes: the test below, spelled out
            if not lines[1] and lines[0].startswith("data: "):
                del lines[1]
                return lines
            return None
        last = lines[-1] if count % 2 else ""  # the read may end between a line and its end
        if count % 2 and not last:
            return None
        end = count - 1 if last else count
        data = lines[0:end:2]
        if any(lines[1:end:2]) or not all(map(str.startswith, data, _DATA_PREFIXES)):
            return None
        if last and last[0] != ":":
            self._event.append(last)
            self._event_chars = len(last)
        return data

    def _grow_partial(self, piece: str) -> None:
        """Keep one more piece of the unfinished line (of a comment: nothing), within the limit."""
        if self._partial[0] == ":":
            return
        self._more.append(piece)
        self._partial_chars += len(piece)
        if self._event_chars + self._partial_chars > self._max_chars:
            raise self._too_big([])

    def _keep_partial(self, partial: str, done: list[str] | list[ServerSentEvent]) -> None:
        """Keep the read's unfinished line; over the limit, raise with the read's events."""
        if partial[0] == ":":  # a comment: ":" stands for it until its line ends
            self._partial, self._partial_chars = ":", 0
            return
        self._partial, self._partial_chars = partial, len(partial)
        if self._event_chars + self._partial_chars > self._max_chars:
            last_id = self._last_event_id
            events = [
                ServerSentEvent(d[6:], "message", last_id) if isinstance(d, str) else d
                for d in done
            ]
            raise self._too_big(events)

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

    def _too_big(self, events: list[ServerSentEvent]) -> SSEDecodeError:
        """The error for an event over the limit; the decoder drops it and closes."""
        size = self._event_chars + self._partial_chars
        self._event, self._partial, self._more = [], "", []
        self._event_chars = self._partial_chars = 0
        self._closed = True
        return SSEDecodeError(
            f"an event grew past max_event_chars={self._max_chars} characters ({size} so far) "
            "without its blank line; no server sends such events: raise the limit if this one "
            "is real",
            events=events,
        )

    def _events(self, lines: list[str]) -> list[ServerSentEvent]:
        """The line-by-line rules, for a read that is not all vLLM-shaped events."""
        events: list[ServerSentEvent] = []
        append = events.append
        last_id = self._last_event_id
        event = self._event  # the lines of the event being read (vLLM's have one)
        room = self._max_chars - self._event_chars  # characters the event may still grow by
        for line in lines:
            if line:
                if line[0] != ":":  # a comment is dropped as soon as it is complete
                    event.append(line)
                    room -= len(line)
                    if room < 0:
                        self._event_chars = self._max_chars - room
                        raise self._too_big(events)
            elif event:  # a blank line ends the event
                first = event[0]
                if len(event) == 1 and first.startswith("data:"):  # vLLM's shape: fast
                    value = first[6:] if first.startswith("data: ") else first[5:]
                    append(_new_event(_EVENT, (value, "message", last_id, None)))
                else:
                    dispatched = self._interpret(event)
                    last_id = self._last_event_id
                    if dispatched is not None:
                        append(dispatched)
                event = []
                room = self._max_chars
        self._event = event
        self._event_chars = self._max_chars - room
        return events

    def close(self) -> str:
        """End the stream; return the discarded text of an unfinished event (``""`` if none).

        Feeding after ``close()`` raises :class:`SSEDecodeError`; closing twice is harmless.
        """
        if self._closed:
            return ""
        self._closed = True
        partial = "" if self._partial == ":" else "".join([self._partial, *self._more])
        rest = "\n".join([*self._event, partial]) if self._event else partial
        rest += self._utf8.decode(b"", final=True)
        self._event, self._partial, self._more = [], "", []
        self._event_chars = self._partial_chars = 0
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
