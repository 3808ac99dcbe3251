"""The load benchmark's own overhead: does `gptoss-modal bench` distort what it measures?

Two tables, medians of several runs:

1. Chunk rate at 64 and 256 concurrent streams against the mock with zero delays (its own
   process, events coalesced into few writes so it can feed the client): our bench driver
   (a closed-loop level of ``run_benchmark``: the streaming client plus the driver), a loop in
   the style of ``vllm bench serve``'s request function (aiohttp line iteration, ``json.loads``
   and a timestamp per line, TTFT/ITL bookkeeping), and a loop on the openai SDK
   (``AsyncOpenAI().chat.completions.create(stream=True)``, a timestamp per chunk). Each stream
   sends its requests back to back. Two measures: the wall-clock chunk rate over the middle 60%
   of each run (the ramp while the mock plans every stream's first request, and the ragged end,
   left out), and the client's CPU time per chunk, which other processes on a shared machine do
   not disturb (for our driver, the CPU of the measured level alone). The mock's CPU per chunk
   gives its capacity on one core (1e6 / it, chunks/s): a client rate near it means the server,
   not the client, set the pace.
2. Timing error per chunk: the mock stamps each event when it writes it (``record_send_times``,
   ``time.perf_counter``, which is CLOCK_MONOTONIC and so shared by processes on Linux), the
   bench stamps each chunk when the read carrying it returns; the difference is what the bench
   adds to every timestamp (loopback and kernel time included). The client and the mock are
   pinned to separate cores while measuring. Measured at vLLM-like paces
   (one event per write, 64 streams at 10 ms per token, 256 at 20 ms; all streams of a level
   emit in the same instant, as one engine step does), and once at zero delay, where the client
   is saturated and the difference is queueing in socket buffers.

Targets (issue 6): at least 3x the line loop's chunk rate, under 1 ms p99 timing error at 64
streams. ``python -m benchmarks bench_load`` runs only this (about 1.5 minutes on 2 cores).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import aiohttp

from gptoss_modal.bench import BenchSettings, Level, percentile, run_benchmark
from gptoss_modal.testing.mock_server import MockProcess, spawn_mock_process

RUNS = 3
TIMING_RUNS = 5
# (streams, output tokens per request, requests per stream for fast loops, ... for the SDK)
WORKLOADS = ((64, 512, 2, 1), (256, 512, 1, 1))
SDK_TOKENS = 128  # the SDK's runs are shorter (at ~9k chunks/s it would take minutes)
WINDOW_SKIP = 0.2  # the first and last 20% of a run's time are not counted
PROMPT = [{"role": "user", "content": "Tell me a long story about the benchmark."}]


# --- peers -------------------------------------------------------------------------------------


def _body(tokens: int) -> dict[str, Any]:
    return {
        "model": "llm",
        "messages": PROMPT,
        "stream": True,
        "stream_options": {"include_usage": True, "continuous_usage_stats": True},
        "max_tokens": tokens,
        "ignore_eos": True,
        "min_tokens": tokens,
        "reasoning_effort": "low",
    }


async def line_loop(url: str, streams: int, requests: int, tokens: int) -> list[float]:
    """`vllm bench serve`'s request style: iterate the body line by line, strip ``data: ``,
    ``json.loads``, one timestamp per line, TTFT and ITL lists. Returns every chunk's stamp."""
    import json

    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60)
    endpoint = f"{url}/v1/chat/completions"
    body = _body(tokens)

    stamps: list[float] = []

    async def one(session: aiohttp.ClientSession) -> None:
        start = time.perf_counter()
        latest = start
        ttft = 0.0
        itl: list[float] = []
        text = ""
        async with session.post(endpoint, json=body) as response:
            async for raw in response.content:
                line = raw.strip()
                if not line or line.startswith(b":"):
                    continue
                data = line.decode().removeprefix("data: ")
                if data == "[DONE]":
                    break
                now = time.perf_counter()
                chunk = json.loads(data)
                stamps.append(now)
                if choices := chunk.get("choices"):
                    if ttft == 0.0:
                        ttft = now - start
                    else:
                        itl.append(now - latest)
                    text += choices[0]["delta"].get("content") or ""
                latest = now

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for _ in range(requests):
                await one(session)

        await asyncio.gather(*(worker() for _ in range(streams)))
    return stamps


async def sdk_loop(url: str, streams: int, requests: int, tokens: int) -> list[float]:
    """The openai SDK: ``chat.completions.create(stream=True)``, a timestamp per chunk."""
    import openai

    # The SDK's own pool (up to 1000 connections) is large enough for 256 streams.
    client = openai.AsyncOpenAI(
        base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=300.0
    )
    body = _body(tokens)
    stamps: list[float] = []

    async def one() -> None:
        stream = await client.chat.completions.create(
            model="llm",
            messages=PROMPT,  # type: ignore[arg-type]
            stream=True,
            max_tokens=tokens,
            stream_options=body["stream_options"],
            extra_body={"ignore_eos": True, "min_tokens": tokens, "reasoning_effort": "low"},
        )
        async for _chunk in stream:  # type: ignore[union-attr]
            stamps.append(time.perf_counter())  # noqa: PERF401 - a stamp as each chunk arrives

    async def worker() -> None:
        for _ in range(requests):
            await one()

    try:
        await asyncio.gather(*(worker() for _ in range(streams)))
    finally:
        await client.close()
    return stamps


async def bench_loop(url: str, streams: int, requests: int, tokens: int) -> list[float]:
    """Our driver: one closed-loop level. Returns every chunk's arrival stamp."""
    settings = BenchSettings(
        url=url,
        model="llm",
        levels=(Level(streams),),
        requests=streams * requests,
        output_tokens=tokens,
        prompts=(tuple(PROMPT),),  # the peers' prompt: the mock plans it once for everyone
        scrape_metrics=False,
    )
    run = await run_benchmark(settings)
    (level,) = run.levels
    assert level.summary.failed == 0, level.summary.errors
    LEVEL_CPU_S.append(level.cpu_s)  # the CPU of the level alone (no probe, warm-up, summary)
    return [r.sent + offset for r in level.records for offset in r.chunk_times_s]


# --- cores -------------------------------------------------------------------------------------


@contextlib.contextmanager
def separate_cores(server_pid: int) -> Iterator[None]:
    """This process on the first core and the mock on the second, while measuring (Linux, 2+
    cores): neither migrates between cores or lands on the other's, which made the timing error's
    p99 vary threefold from run to run."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        yield
        return
    cores = sorted(os.sched_getaffinity(0))
    try:
        os.sched_setaffinity(0, cores[:1])
        os.sched_setaffinity(server_pid, cores[1:2])
        yield
    finally:
        os.sched_setaffinity(0, cores)


# --- chunk rate --------------------------------------------------------------------------------

Loop = Callable[[str, int, int, int], Coroutine[Any, Any, Any]]


LEVEL_CPU_S: list[float] = []  # bench_loop's level CPU time, read by measure()


@dataclass
class Rate:
    chunks_per_s: float
    cpu_us_per_chunk: float  # the client's CPU per chunk received
    server_us_per_chunk: float  # the mock's CPU per chunk sent (its capacity is 1e6 / this)


def sustained(stamps: list[float]) -> float:
    """Chunks per second in the middle 60% of the run: the ramp-up while every stream's first
    request is being planned, and the ragged end, are left out."""
    first, last = min(stamps), max(stamps)
    start, end = first + WINDOW_SKIP * (last - first), last - WINDOW_SKIP * (last - first)
    return sum(1 for t in stamps if start <= t <= end) / (end - start)


def measure(mock: MockProcess, loop: Loop, streams: int, requests: int, tokens: int) -> Rate:
    """One run of ``loop``: its sustained chunk rate, its CPU per chunk (a measure that other
    processes on the machine do not disturb), and the mock's CPU per chunk meanwhile."""
    LEVEL_CPU_S.clear()
    cpu0, client0 = mock.cpu_seconds(), time.thread_time()
    stamps = asyncio.run(loop(mock.url, streams, requests, tokens))
    server = mock.cpu_seconds() - cpu0  # includes planning each request, and any warm-up
    client = LEVEL_CPU_S[0] if LEVEL_CPU_S else time.thread_time() - client0
    return Rate(sustained(stamps), client / len(stamps) * 1e6, server / len(stamps) * 1e6)


def chunk_rates() -> None:
    print(
        f"chunk rate against the mock with zero delays, sustained over the middle "
        f"{1 - 2 * WINDOW_SKIP:.0%} of each run, and client CPU per chunk; median of {RUNS} runs"
    )
    print(
        f"{'streams':>8}  {'client':<22}{'chunks/s':>10}{'ours / it':>10}{'CPU us/chunk':>13}"
        f"{'it / ours':>10}{'mock us/chunk':>14}  workload"
    )
    with (
        spawn_mock_process(["--ttft-ms", "0", "--itl-ms", "0"]) as mock,
        separate_cores(mock.pid),
    ):
        for streams, tokens, fast_requests, sdk_requests in WORKLOADS:
            loops: list[tuple[str, Loop, int, int]] = [
                ("gptoss-modal bench", bench_loop, fast_requests, tokens),
                ("vllm-style line loop", line_loop, fast_requests, tokens),
                ("openai SDK", sdk_loop, sdk_requests, SDK_TOKENS),
            ]
            results: dict[str, list[Rate]] = {name: [] for name, *_ in loops}
            for _ in range(RUNS):  # interleaved, so a noisy moment hits every client alike
                for name, loop, requests, length in loops:
                    results[name].append(measure(mock, loop, streams, requests, length))
            ours = results["gptoss-modal bench"]
            our_rate = statistics.median(r.chunks_per_s for r in ours)
            our_cpu = statistics.median(r.cpu_us_per_chunk for r in ours)
            for name, _, requests, length in loops:
                rate = statistics.median(r.chunks_per_s for r in results[name])
                cpu = statistics.median(r.cpu_us_per_chunk for r in results[name])
                server = statistics.median(r.server_us_per_chunk for r in results[name])
                print(
                    f"{streams:>8}  {name:<22}{rate:>10,.0f}{our_rate / rate:>9.1f}x{cpu:>13.2f}"
                    f"{cpu / our_cpu:>9.1f}x{server:>14.2f}  {streams}x{requests} x {length} tokens"
                )


# --- timing error --------------------------------------------------------------------------------


def _serve(config: dict[str, Any], conn: Any) -> None:
    """The child process: a MockVLLM that records send times and hands them over on request."""
    from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

    async def main() -> None:
        server = MockVLLM(MockConfig(**config, record_send_times=True))
        await server.start()
        conn.send(server.url)
        loop = asyncio.get_running_loop()
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "log":
                conn.send({k: v.event_times for k, v in server.send_log.items()})
                server.send_log.clear()
            else:
                break
        await server.stop()

    asyncio.run(main())


@contextlib.contextmanager
def recording_mock(**config: Any) -> Iterator[tuple[str, Callable[[], dict[str, list[float]]]]]:
    """A mock in a child process (on its own core); yields its URL and a function returning
    its send log."""
    context = multiprocessing.get_context("spawn")
    stack = contextlib.ExitStack()
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(config, child), daemon=True)
    process.start()
    try:
        url = parent.recv()
        assert process.pid is not None
        stack.enter_context(separate_cores(process.pid))

        def send_log() -> dict[str, list[float]]:
            parent.send("log")
            log: dict[str, list[float]] = parent.recv()
            return log

        yield url, send_log
    finally:
        stack.close()
        parent.send("stop")
        process.join(timeout=10)
        if process.is_alive():
            process.kill()


def timing_errors(streams: int, itl_ms: float, tokens: int, coalesce: bool) -> list[float]:
    """Arrival minus send, in seconds, for every chunk of one measured level."""
    config = {"ttft_ms": 20.0, "itl_ms": itl_ms, "coalesce_writes": coalesce}
    with recording_mock(**config) as (url, send_log):
        settings = BenchSettings(
            url=url,
            levels=(Level(streams),),
            requests=streams,
            input_tokens=16,
            output_tokens=tokens,
            scrape_metrics=False,
        )
        run = asyncio.run(run_benchmark(settings))
        sends = send_log()
    errors: list[float] = []
    for record in run.levels[0].records:
        sent = sends.get(record.response_id or "")
        if sent is None:
            raise RuntimeError(f"no send times for {record.response_id}")
        errors += [
            record.sent + offset - at
            for offset, at in zip(record.chunk_times_s, sent, strict=False)
        ]
    return errors


def timing_table() -> None:
    print(
        "\ntiming error per chunk (bench arrival stamp - mock send stamp); median of "
        f"{TIMING_RUNS} runs"
    )
    print(
        f"{'streams':>8}  {'pace':<34}{'chunks':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'p99 range':>15}{'max ms':>9}"
    )
    cases = (
        (64, 10.0, 200, False, "10 ms/token, one event per write"),
        (256, 20.0, 100, False, "20 ms/token, one event per write"),
        (64, 0.0, 200, True, "zero delay (saturated: queueing)"),
    )
    for streams, itl_ms, tokens, coalesce, pace in cases:
        runs = [timing_errors(streams, itl_ms, tokens, coalesce) for _ in range(TIMING_RUNS)]
        p50 = statistics.median(percentile(e, 50) for e in runs) * 1e3
        p99s = [percentile(e, 99) * 1e3 for e in runs]
        p99 = statistics.median(p99s)
        spread = f"{min(p99s):.2f}-{max(p99s):.2f}"
        worst = statistics.median(max(e) for e in runs) * 1e3
        count = statistics.median(len(e) for e in runs)
        print(
            f"{streams:>8}  {pace:<34}{count:>8.0f}{p50:>9.3f}{p99:>9.3f}{spread:>15}{worst:>9.2f}"
        )


def main() -> None:
    chunk_rates()
    timing_table()


if __name__ == "__main__":
    main()
