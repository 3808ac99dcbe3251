"""The bytes of a streamed Responses API reply in, typed events out: :class:`ResponseEventDecoder`.

It fuses :class:`~gptoss_modal.stream.sse.SSEDecoder` and
:func:`~gptoss_modal.stream.responses.parse_response_events` (sans-IO: no sockets, no clock; the
caller passes each read's bytes and its arrival stamp), with the same interface as
:class:`~gptoss_modal.stream.decoder.ChatChunkDecoder`, so the client drives both alike.
"""

from __future__ import annotations

from gptoss_modal._exceptions import SSEDecodeError
from gptoss_modal.stream.responses import AnyResponseEvent, parse_response_events
from gptoss_modal.stream.sse import DEFAULT_MAX_EVENT_CHARS, SSEDecoder

__all__ = ["ResponseEventDecoder"]


class ResponseEventDecoder:
    """The bytes of a Responses stream in, typed events out (sans-IO).

    ``feed(data, into, arrival=...)`` is ``parse_response_events(SSEDecoder.feed(data), into,
    arrival=...)``: ``True`` once the terminal event came, with the same errors, and bytes after
    the terminal event are not parsed. ``close()`` is the SSE decoder's.
    """

    __slots__ = ("_done", "_sse")

    def __init__(self, *, max_event_chars: int = DEFAULT_MAX_EVENT_CHARS) -> None:
        self._sse = SSEDecoder(max_event_chars=max_event_chars)
        self._done = False

    @property
    def done(self) -> bool:
        """Whether the terminal event (``response.completed``, ``.incomplete``...) came."""
        return self._done

    def feed(self, data: bytes, into: list[AnyResponseEvent], *, arrival: float = 0.0) -> bool:
        """Decode one read, appending its events to ``into``; ``True`` once the stream ended."""
        if self._done:
            return True
        try:
            events = self._sse.feed(data)
        except SSEDecodeError as exc:  # an event over the limit: keep the read's events first
            parse_response_events(exc.events, into, arrival=arrival)
            raise
        done = False
        try:
            done = parse_response_events(events, into, arrival=arrival)
        finally:
            # response.failed is appended, then raises: the stream has ended all the same
            self._done = done or (bool(into) and into[-1].type == "response.failed")
        return self._done

    def close(self) -> str:
        """End the stream: the text of an unfinished event that was discarded (``""`` if none)."""
        return self._sse.close()
