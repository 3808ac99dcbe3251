"""The load patterns: when each request of a level is sent, on a fake clock."""

from __future__ import annotations

import asyncio

from gptoss_modal.bench.loads import ClosedLoop, LoadPattern, OpenLoop, load_pattern
from gptoss_modal.bench.settings import Level
from tests.unit.bench.scripted import settings


class Recorder:
    """A ``send`` that records each call and the most requests in flight at once."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float | None]] = []
        self.in_flight = 0
        self.peak = 0

    async def __call__(self, index: int, queue_s: float | None) -> None:
        self.calls.append((index, queue_s))
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0)
        self.in_flight -= 1


def frozen() -> float:
    """A clock that never moves: open-loop arrivals are all due at once."""
    return 1_000.0


async def test_a_closed_loop_sends_every_request_with_concurrency_workers() -> None:
    """Closed loop: each index once, at most `concurrency` in flight, no queue time."""
    send = Recorder()
    await ClosedLoop(3, 10).run(send, start=0.0, clock=frozen)
    assert sorted(i for i, _ in send.calls) == list(range(10))
    assert send.peak == 3
    assert {q for _, q in send.calls} == {None}


async def test_a_closed_loop_for_a_duration_stops_at_the_deadline() -> None:
    """With a duration and a clock past it, no request starts."""
    send = Recorder()
    await ClosedLoop(2, None, duration_s=5.0).run(send, start=0.0, clock=frozen)
    assert send.calls == []


async def test_an_open_loop_caps_in_flight_and_records_queueing() -> None:
    """Open loop with a cap: each index once, at most `cap` at once, queue time >= 0."""
    send = Recorder()
    await OpenLoop(1e6, 2, 8).run(send, start=frozen(), clock=frozen)
    assert sorted(i for i, _ in send.calls) == list(range(8))
    assert send.peak <= 2
    assert all(q is not None and q >= 0 for _, q in send.calls)


async def test_an_open_loop_without_a_cap_has_no_queue() -> None:
    """Without a cap every request is sent on arrival: queue time 0."""
    send = Recorder()
    await OpenLoop(1e6, None, 5).run(send, start=frozen(), clock=frozen)
    assert {q for _, q in send.calls} == {0.0}


def test_levels_get_their_pattern() -> None:
    """A concurrency level is a closed loop, a rate level an open loop seeded per level."""
    chosen = settings(levels=(Level(4), Level(8, 2.0)), requests=9)
    closed: LoadPattern = load_pattern(chosen, Level(4), 0)
    assert closed == ClosedLoop(4, 9, None)
    assert load_pattern(chosen, Level(8, 2.0), 1) == OpenLoop(2.0, 8, 9, None, seed="0:arrivals:1")
