"""How a level's requests are sent: each load pattern is a small strategy behind one interface.

A :class:`LoadPattern` decides *when* request ``i`` of a level is sent; the driver decides what
it is and measures it. The pattern calls ``send(index, queue_s)`` and returns once every
request it started has finished.

Closed loop (:class:`ClosedLoop`): ``concurrency`` workers each send their next request when
the last one ends. Open loop (:class:`OpenLoop`): requests are scheduled at Poisson arrivals
(exponential gaps at ``rate`` per second, seeded) whatever the server does; with a concurrency
cap a request may wait for a slot, and that wait is its *queue* time. A level ends after
``total`` requests, or when ``duration_s`` has passed (requests in flight then finish).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from gptoss_modal.bench.settings import BenchSettings, Level

__all__ = ["ClosedLoop", "LoadPattern", "OpenLoop", "Send", "load_pattern"]

# Sends measured request ``index``; ``queue_s`` is its client-side wait for a slot (``None``
# where the pattern has no queue). Returns when the request has finished (or failed).
Send = Callable[[int, float | None], Awaitable[None]]


class LoadPattern(Protocol):
    """When a level's requests are sent."""

    async def run(self, send: Send, *, start: float, clock: Callable[[], float]) -> None:
        """Send the level's requests through ``send`` from ``start`` (on ``clock``); return
        when every one has finished."""


@dataclass(frozen=True, slots=True)
class ClosedLoop:
    """``concurrency`` workers, each sending its next request when its last one ended."""

    concurrency: int
    total: int | None
    duration_s: float | None = None

    async def run(self, send: Send, *, start: float, clock: Callable[[], float]) -> None:
        """Run the workers until ``total`` requests were sent or the duration passed."""
        deadline = None if self.duration_s is None else start + self.duration_s
        next_index = 0

        async def worker() -> None:
            nonlocal next_index
            while (self.total is None or next_index < self.total) and (
                deadline is None or clock() < deadline
            ):
                index = next_index
                next_index += 1
                await send(index, None)

        await asyncio.gather(*(worker() for _ in range(self.concurrency)))


@dataclass(frozen=True, slots=True)
class OpenLoop:
    """Poisson arrivals at ``rate`` per second (gaps seeded by ``seed``), at most ``cap`` in
    flight (``None``: no cap); a request waiting for a slot has that wait as its queue time."""

    rate: float
    cap: int | None
    total: int | None
    duration_s: float | None = None
    seed: str = "0"

    async def run(self, send: Send, *, start: float, clock: Callable[[], float]) -> None:
        """Schedule every arrival, then wait for the requests still in flight."""
        rng = random.Random(self.seed)  # noqa: S311 - a seeded workload
        slots = asyncio.Semaphore(self.cap) if self.cap else None
        tasks: list[asyncio.Task[None]] = []

        async def arrive(index: int, scheduled: float) -> None:
            if slots is None:
                await send(index, 0.0)
                return
            async with slots:
                await send(index, max(0.0, clock() - scheduled))

        offset = 0.0
        index = 0
        while self.total is None or index < self.total:
            offset += rng.expovariate(self.rate)
            if self.duration_s is not None and offset > self.duration_s:
                break
            delay = start + offset - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(arrive(index, start + offset)))
            index += 1
        await asyncio.gather(*tasks)


def load_pattern(settings: BenchSettings, level: Level, number: int) -> LoadPattern:
    """The pattern of level ``number`` of a run: closed loop, or open loop with a rate."""
    total = settings.requests_for(level)
    if level.rate is None:
        return ClosedLoop(level.concurrency or 1, total, settings.duration_s)
    return OpenLoop(
        level.rate,
        level.concurrency,
        total,
        settings.duration_s,
        seed=f"{settings.seed}:arrivals:{number}",
    )
