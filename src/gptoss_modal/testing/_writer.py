"""The paced stream writer: sends a stream's events when each is due, coalescing those already
due into one write, and lets a fault interrupt it at one event.

API-neutral: it writes bytes it is given through any ``write`` coroutine (aiohttp's
``StreamResponse.write``); what a fault writes is the caller's wire format. The loop is the
mock's hot path, so it does no per-event work beyond the comparisons it needs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gptoss_modal.testing._layout import StreamEvents

__all__ = ["MAX_WRITE_BYTES", "Interruption", "SendRecord", "StreamWriter"]

MAX_WRITE_BYTES = 64 * 1024  # coalesced writes are cut at this size


@dataclass
class SendRecord:
    """When a stream's bytes were written: one ``time.perf_counter()`` per event."""

    request_id: str
    arrival: float
    event_times: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Interruption:
    """What a fault does just before event ``at``: pause ``pause_s``, write ``payloads`` (each
    on its own), then go on with the stream, or ``stop`` it there."""

    at: int
    pause_s: float | None = None
    payloads: tuple[bytes, ...] = ()
    stop: bool = False


class StreamWriter:
    """Writes one stream; ``served_steps`` and ``sent_all`` say how far it got, even when the
    client went away or the server was stopped mid-stream."""

    def __init__(
        self,
        stream: StreamEvents,
        *,
        coalesce: bool,
        interruption: Interruption | None = None,
        record: SendRecord | None = None,
    ) -> None:
        self.stream = stream
        self.coalesce = coalesce
        self.interruption = interruption
        self.record = record
        self.served_steps = 0
        self.sent_all = False

    async def run(self, write: Callable[[bytes], Awaitable[None]]) -> None:
        """Send every event when it is due (measured from now), or until the interruption
        stops the stream."""
        events, times, steps_done = self.stream.events, self.stream.times, self.stream.steps_done
        cut = self.interruption
        record = self.record
        loop = asyncio.get_running_loop()
        start = loop.time()
        coalesce = self.coalesce
        n = len(events)
        fault_at = cut.at if cut is not None else n + 1
        served = i = 0
        try:
            while i < n:
                if i == fault_at and cut is not None:
                    if await self._interrupt(cut, write):
                        break
                    fault_at = n + 1
                due = start + times[i]
                now = loop.time()
                if due > now:
                    await asyncio.sleep(due - now)
                    now = loop.time()
                j = i + 1
                if coalesce:
                    size = len(events[i])
                    while j < n and j != fault_at and start + times[j] <= now:
                        size += len(events[j])
                        if size > MAX_WRITE_BYTES:
                            break
                        j += 1
                await write(b"".join(events[i:j]) if j > i + 1 else events[i])
                if record is not None:
                    stamp = time.perf_counter()
                    record.event_times.extend([stamp] * (j - i))
                served = steps_done[j - 1]
                i = j
        finally:
            self.served_steps = served
            self.sent_all = i >= n

    @staticmethod
    async def _interrupt(cut: Interruption, write: Callable[[bytes], Awaitable[None]]) -> bool:
        """Carry out the interruption; True if the stream stops here."""
        if cut.pause_s is not None:
            await asyncio.sleep(cut.pause_s)
        for payload in cut.payloads:
            await write(payload)
        return cut.stop
