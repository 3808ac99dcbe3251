"""The mock server's own speed: can it feed 256 concurrent streams without being the bottleneck?

The mock runs in its own process (zero TTFT and inter-token latency, ``ignore_eos`` fixed-length
replies); this process reads 256 concurrent streams with a raw aiohttp reader that only counts
events (no parsing), so the client does as little as possible. Reported, as medians of several
runs: the chunk rate the reader saw, and the mock's own CPU time per chunk, from which its
capacity per core follows. If that capacity is well above the rate, the reader (the client)
was the limit, not the mock. Run in two modes: events coalesced into few writes (the default)
and one write per event (``--one-event-per-write``, as vLLM's server writes).
"""

from __future__ import annotations

import asyncio
import statistics
import time

import aiohttp

from gptoss_modal.testing.mock_server import MockProcess, spawn_mock_process

STREAMS = 256
TOKENS_PER_STREAM = 400
RUNS = 5


async def _read_all(url: str, streams: int) -> int:
    """Read ``streams`` concurrent streamed chats to the end; returns the events seen."""
    body = {
        "model": "llm",
        "messages": [{"role": "user", "content": "benchmark"}],
        "stream": True,
        "ignore_eos": True,
        "max_tokens": TOKENS_PER_STREAM,
        "reasoning_effort": "low",
    }
    connector = aiohttp.TCPConnector(limit=0)

    async def one(session: aiohttp.ClientSession) -> int:
        events = 0
        async with session.post(url + "/v1/chat/completions", json=body) as response:
            async for data in response.content.iter_any():
                events += data.count(b"\n\n")
        return events

    async with aiohttp.ClientSession(connector=connector) as session:
        counts = await asyncio.gather(*(one(session) for _ in range(streams)))
    return sum(counts)


def _measure(mock: MockProcess) -> tuple[float, float]:
    """One run: (events per second seen by the reader, mock CPU seconds per event)."""
    cpu_before = mock.cpu_seconds()
    start = time.perf_counter()
    events = asyncio.run(_read_all(mock.url, STREAMS))
    wall = time.perf_counter() - start
    cpu = mock.cpu_seconds() - cpu_before
    return events / wall, cpu / events


def main() -> None:
    print(f"{STREAMS} concurrent streams x {TOKENS_PER_STREAM} tokens, zero delay, {RUNS} runs")
    print(
        f"{'mode':<22} {'chunks/s seen':>14} {'mock CPU us/chunk':>18} {'mock capacity/core':>19}"
    )
    for label, args in (
        ("coalesced writes", ["--ttft-ms", "0", "--itl-ms", "0"]),
        ("one event per write", ["--ttft-ms", "0", "--itl-ms", "0", "--one-event-per-write"]),
    ):
        with spawn_mock_process(args) as mock:
            asyncio.run(_read_all(mock.url, 8))  # warm-up
            results = [_measure(mock) for _ in range(RUNS)]
        rate = statistics.median(r for r, _ in results)
        per_chunk = statistics.median(c for _, c in results)
        capacity = 1 / per_chunk if per_chunk > 0 else float("inf")
        print(f"{label:<22} {rate:>14,.0f} {per_chunk * 1e6:>18.2f} {capacity:>19,.0f}")
    print("capacity/core = chunks the mock could write per CPU-second; above the rate seen, the")
    print("reader (client side) was the bottleneck, not the mock.")


if __name__ == "__main__":
    main()
