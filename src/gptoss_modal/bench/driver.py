"""The load driver: requests on the streaming client, a level at a time.

Before the levels, :func:`probe` sends one uncounted request and returns what it learnt
(:class:`Probe`): it fails the run at once when every request would fail the same way (a wrong
key, model or URL), tells whether the server accepts fixed output lengths (``ignore_eos`` and
``min_tokens``), and measures the chat template's overhead so that synthetic prompts have the
requested length as the server counts it.

Per level, :meth:`Driver.level` runs a warm-up that is not counted (one short request per slot,
so connections and the server are warm), a scrape of ``/metrics`` through the client, the
measured requests sent by the level's :class:`~gptoss_modal.bench.loads.LoadPattern`, and
another scrape; :func:`gptoss_modal.bench.summary.summarise` then makes the level's result.

Every request's chunks are stamped by the client once per network read, before parsing; the
records are built after the level, so its CPU goes to receiving. Failed requests are recorded
with their kind and message and never dropped. The driver measures the CPU time of its own
event-loop thread, for the client-bound warning.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gptoss_modal._exceptions import (
    AuthenticationError,
    BenchmarkError,
    GptossModalError,
    HTTPStatusError,
)
from gptoss_modal.bench.agentic import response_input
from gptoss_modal.bench.loads import LoadPattern
from gptoss_modal.bench.progress import LiveStats, Progress
from gptoss_modal.bench.prometheus import MetricsFormatError, MetricsSnapshot
from gptoss_modal.bench.prompts import PromptSet
from gptoss_modal.bench.records import RequestRecord, error_kind, record_request
from gptoss_modal.bench.results import LevelResult
from gptoss_modal.bench.settings import BenchSettings, Level
from gptoss_modal.bench.summary import LevelMeasurement, summarise
from gptoss_modal.bench.workload import (
    Api,
    BenchClient,
    BenchRequest,
    BenchResult,
    BenchStream,
    ChatWorkload,
    Sent,
    Workload,
)
from gptoss_modal.stream.chunks import Usage
from gptoss_modal.stream.responses_accumulator import ResponseResult

__all__ = ["MAX_HELD_CHUNKS", "Driver", "MetricsScraper", "Probe", "Sender", "probe"]

WARMUP_MAX_TOKENS: Final = 16  # warm-up and probe requests are short
PROGRESS_INTERVAL_S: Final = 0.25
LIVE_WINDOW_S: Final = 2.0  # live tokens/s is measured over this trailing window
MAX_HELD_CHUNKS: Final = 2_000_000  # chunks kept for records built after the level (~0.5 GB)
METRICS_TIMEOUT_S: Final = 10.0
# Probe answers that every request would repeat: the key, the URL or the model is wrong.
_FATAL_PROBE_STATUSES: Final = frozenset({400, 401, 403, 404})


# --- sending one request (the types are in bench/workload.py) ----------------------------------


@dataclass(frozen=True, slots=True)
class Sender:
    """Sends one request as the run asks: through chat completions or the Responses API
    (``api``), with its reasoning effort, continuous usage (chat), and (when ``fixed_output``)
    exactly ``max_tokens`` of output."""

    client: BenchClient
    reasoning_effort: str | None
    fixed_output: bool
    clock: Callable[[], float]
    api: Api = "chat"

    def _extra(self, max_tokens: int) -> dict[str, Any] | None:
        # vLLM: ignore_eos skips the EOS token, min_tokens also holds back stop tokens such as
        # harmony's <|return|>, so the reply is exactly max_tokens long.
        # The Responses API has no min_tokens (and 0.13.0 no ignore_eos): lengths are not fixed.
        if not self.fixed_output or self.api == "responses":
            return None
        return {"ignore_eos": True, "min_tokens": max_tokens}

    def _stream(self, request: BenchRequest, max_tokens: int) -> BenchStream:
        extra = self._extra(max_tokens)
        if request.tool_choice is not None:
            extra = {**(extra or {}), "tool_choice": self._tool_choice(request.tool_choice)}
        if self.api == "chat":
            return self.client.stream_chat(
                request.messages,
                reasoning_effort=self.reasoning_effort,
                max_tokens=max_tokens,
                continuous_usage=True,
                extra=extra,
                tools=request.tools,
                headers=request.headers,
            )
        instructions, items = response_input(request.messages)
        return self.client.stream_response(
            items,
            instructions=instructions,
            reasoning_effort=self.reasoning_effort,
            tools=request.tools,
            max_output_tokens=max_tokens,
            extra=extra,
            headers=request.headers,
        )

    def _tool_choice(self, choice: Any) -> Any:
        # The Responses API names a function flat: {"type": "function", "name": ...}.
        if self.api == "responses" and isinstance(choice, dict) and "function" in choice:
            return {"type": "function", "name": choice["function"]["name"]}
        return choice

    async def send(
        self,
        messages: Sequence[Mapping[str, Any]] | BenchRequest,
        max_tokens: int,
        in_flight: set[BenchResult] | None = None,
    ) -> Sent:
        """Send one request (chat messages, or a whole :class:`BenchRequest`) and read it to
        its end; a failure is returned, not raised."""
        request = messages if isinstance(messages, BenchRequest) else BenchRequest(messages)
        stream = self._stream(request, max_tokens)
        result = stream.result
        if in_flight is not None:
            in_flight.add(result)
        try:
            async with stream:
                await stream.collect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001  (recorded by kind: a failed request is never dropped)
            return Sent(result, exc, self.clock())
        finally:
            if in_flight is not None:
                in_flight.discard(result)
        return Sent(result)


# --- the probe ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Probe:
    """What the probe request learnt: whether fixed output lengths are accepted, the chat
    template's tokens (``None``: not measured), and warnings for the run."""

    fixed_output: bool
    template_tokens: int | None = None
    warnings: tuple[str, ...] = ()


def _refused_fixed_output(error: BaseException | None) -> bool:
    return (
        isinstance(error, HTTPStatusError)
        and error.status == 400
        and not isinstance(error, AuthenticationError)
    )


async def probe(sender: Sender, prompts: PromptSet, settings: BenchSettings) -> Probe:
    """One uncounted request before anything else: fail fast, learn the template size.

    Raises :class:`BenchmarkError` when the answer (400, 401, 403, 404) says every request
    would fail the same way. A 400 to ``ignore_eos``/``min_tokens`` is retried without them.
    """
    max_tokens = min(WARMUP_MAX_TOKENS, settings.output_tokens)
    messages = prompts.probe()
    warnings: list[str] = []
    sent = await sender.send(messages, max_tokens)
    fixed = sender.fixed_output
    if fixed and _refused_fixed_output(sent.error):
        retried = await dataclasses.replace(sender, fixed_output=False).send(messages, max_tokens)
        if retried.error is None:  # a server that refuses ignore_eos/min_tokens
            fixed, sent = False, retried
            warnings.append(
                "the server refused ignore_eos/min_tokens (HTTP 400): output lengths are "
                "whatever the model generates, up to --output-tokens"
            )
        else:
            sent = retried
    error = sent.error
    if isinstance(error, HTTPStatusError) and error.status in _FATAL_PROBE_STATUSES:
        raise BenchmarkError(
            f"the first request failed, and every request would fail the same way "
            f"({error_kind(error)}): {error}"
        ) from error
    if error is not None:
        warnings.append(f"the probe request failed ({error_kind(error)}): {error}")
        return Probe(fixed, None, tuple(warnings))
    if settings.prompts is not None:
        return Probe(fixed, None, tuple(warnings))
    usage = sent.result.usage
    if usage is None:
        warnings.append("the server sent no usage: prompts are not calibrated to --input-tokens")
        return Probe(fixed, None, tuple(warnings))
    prompt_tokens = usage.prompt_tokens if isinstance(usage, Usage) else usage.input_tokens
    template = max(0, prompt_tokens - settings.input_tokens)
    return Probe(fixed, template, tuple(warnings))


# --- /metrics ----------------------------------------------------------------------------------


class MetricsScraper:
    """``/metrics`` through the client; after the first failure, one warning and no more tries."""

    def __init__(self, client: BenchClient, *, enabled: bool = True) -> None:
        self.client = client
        self.available = enabled
        self.warnings: list[str] = []

    async def scrape(self) -> MetricsSnapshot | None:
        """The server's metrics now; ``None`` when they cannot be read."""
        if not self.available:
            return None
        try:
            return MetricsSnapshot.parse(
                await self.client.fetch_metrics(timeout_s=METRICS_TIMEOUT_S)
            )
        except (GptossModalError, MetricsFormatError) as exc:
            problem = str(exc) or type(exc).__name__
        self.warnings.append(
            f"{self.client.base_url}/metrics could not be read ({problem}): no spec-decode "
            "acceptance or server-side latencies"
        )
        self.available = False
        return None


# --- a level -----------------------------------------------------------------------------------


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a level is measured (as ``timeit`` does).

    A full collection walks every object the process holds and stops the event loop for tens
    of milliseconds, so every chunk arriving meanwhile would be stamped late (measured: p99
    timing error 6 ms with the collector on, 1 ms with it paused, at 64 streams). Reference
    counting still frees almost everything; the cycles a level leaves (failed requests'
    tracebacks) are collected right after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


@dataclass(frozen=True, slots=True)
class _Held:
    """A finished request whose record is built after the level."""

    index: int
    sent: Sent
    queue_s: float | None
    request: BenchRequest | None = None


def running_tokens(result: BenchResult) -> int:
    """Output tokens so far: the last chunk's running usage (chat), or the output deltas so
    far until the terminal event's usage (Responses, which has no running usage)."""
    if isinstance(result, ResponseResult):
        if result.done and (tokens := result.output_tokens) is not None:
            return tokens
        return sum(1 for event in result.chunks if event.has_output)
    chunks = result.chunks
    if chunks and (usage := chunks[-1].usage) is not None:
        return usage.completion_tokens
    return 0


@dataclass
class LevelState:
    """Live counters of the running level (read by the progress ticker), and the finished
    requests held for their records."""

    level: Level
    clock: Callable[[], float]
    start: float = 0.0
    done: int = 0
    errors: int = 0
    finished_tokens: int = 0
    in_flight: set[BenchResult] = field(default_factory=set)
    window: collections.deque[tuple[float, int]] = field(default_factory=collections.deque)
    held: list[_Held] = field(default_factory=list)
    held_chunks: int = 0
    records: list[RequestRecord] = field(default_factory=list)

    def finished(
        self,
        index: int,
        sent: Sent,
        queue_s: float | None,
        request: BenchRequest | None = None,
    ) -> None:
        """Count a finished request and hold it (or, past the memory bound, record it now)."""
        self.done += 1
        if sent.error is not None:
            self.errors += 1
        chunks = sent.result.chunks
        self.finished_tokens += running_tokens(sent.result)
        # Held chunks cost memory only, bounded by MAX_HELD_CHUNKS.
        if self.held_chunks + len(chunks) <= MAX_HELD_CHUNKS:
            self.held.append(_Held(index, sent, queue_s, request))
            self.held_chunks += len(chunks)
        else:
            self.records.append(self.record(_Held(index, sent, queue_s, request)))

    def record(self, held: _Held) -> RequestRecord:
        """The record of one finished request of this level."""
        sent = held.sent
        return record_request(
            self.level.label,
            held.index,
            sent.result,
            sent.error,
            queue_s=held.queue_s,
            failed_at=sent.failed_at,
            request=held.request,
        )

    def all_records(self) -> list[RequestRecord]:
        """Every request's record, the held ones built now (and released)."""
        records = self.records + [self.record(h) for h in self.held]
        self.held.clear()
        return records

    def tokens_so_far(self) -> int:
        """Output tokens of the finished requests and, so far, of those in flight."""
        return self.finished_tokens + sum(running_tokens(r) for r in self.in_flight)

    def live(
        self, total: int | None, duration_s: float | None, expected_tokens: int | None = None
    ) -> LiveStats:
        """The counters now, with output tokens/s over the trailing window."""
        now = self.clock()
        tokens = self.tokens_so_far()
        window = self.window
        window.append((now, tokens))
        while len(window) > 2 and now - window[0][0] > LIVE_WINDOW_S:
            window.popleft()
        then, before = window[0]
        rate = (tokens - before) / (now - then) if now > then else 0.0
        return LiveStats(
            self.level,
            self.done,
            self.errors,
            len(self.in_flight),
            now - self.start,
            rate,
            total,
            duration_s,
            tokens,
            expected_tokens,
        )


class Driver:
    """Runs a run's levels on one client, after the probe (``sender`` has its verdict)."""

    def __init__(
        self,
        settings: BenchSettings,
        sender: Sender,
        prompts: PromptSet,
        scraper: MetricsScraper,
        progress: Progress,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.settings = settings
        self.sender = sender
        self.prompts = prompts
        self.scraper = scraper
        self.progress = progress
        self.clock = sender.clock
        self.cpu_clock = cpu_clock

    async def warm_up(self, level: Level, number: int) -> dict[str, int]:
        """The uncounted requests before a level; their failures by kind."""
        count = self.settings.warmup if self.settings.warmup is not None else level.slots
        if count <= 0:
            return {}
        max_tokens = min(WARMUP_MAX_TOKENS, self.settings.output_tokens)
        errors: collections.Counter[str] = collections.Counter()
        slots = asyncio.Semaphore(level.slots)
        self.progress.warmup_started(level, count)

        async def one(i: int) -> None:
            async with slots:
                sent = await self.sender.send(self.prompts.messages(-1 - number, i), max_tokens)
                if sent.error is not None:
                    errors[error_kind(sent.error)] += 1

        await asyncio.gather(*(one(i) for i in range(count)))
        return dict(errors)

    async def measure(
        self,
        level: Level,
        number: int,
        pattern: LoadPattern,
        workload: Workload | None = None,
    ) -> LevelMeasurement:
        """The level's measured requests, sent by ``pattern`` (what each one is: ``workload``,
        by default the run's single-turn prompts), with its wall and CPU time."""
        work: Workload = workload if workload is not None else ChatWorkload(self.prompts, number)
        total = self.settings.requests_for(level)
        duration = self.settings.duration_s
        output_tokens = self.settings.output_tokens
        # An upper bound when replies may end early: the bar then completes at the level's end.
        expected = None if total is None else total * output_tokens
        self.progress.level_started(level, total, duration)
        state = LevelState(level, self.clock)

        async def send(index: int, queue_s: float | None) -> None:
            request = work.request(index)
            sent = await self.sender.send(request, output_tokens, state.in_flight)
            work.finished(index, sent)
            state.finished(index, sent, queue_s, request)

        async def ticker() -> None:
            while True:
                await asyncio.sleep(PROGRESS_INTERVAL_S)
                self.progress.update(state.live(total, duration, expected))

        with collector_paused():
            cpu_start = self.cpu_clock()
            state.start = self.clock()
            ticking = asyncio.ensure_future(ticker())
            try:
                await pattern.run(send, start=state.start, clock=self.clock)
            finally:
                ticking.cancel()
            wall = self.clock() - state.start
            cpu = self.cpu_clock() - cpu_start
        self.progress.level_finished(state.live(total, duration, expected))
        return LevelMeasurement(state.all_records(), wall_s=wall, cpu_s=cpu)

    async def level(
        self,
        level: Level,
        number: int,
        pattern: LoadPattern,
        limits: dict[str, float] | None,
        workload: Workload | None = None,
    ) -> LevelResult:
        """Warm up, scrape, measure, scrape, and summarise one level."""
        warmup_errors = await self.warm_up(level, number)
        before = await self.scraper.scrape()
        measured = await self.measure(level, number, pattern, workload)
        after = await self.scraper.scrape()
        return summarise(
            level,
            dataclasses.replace(measured, before=before, after=after, warmup_errors=warmup_errors),
            limits=limits,
            planned_requests=self.settings.requests_for(level),
            price=self.settings.price,
            compare_usd_per_mtok=self.settings.compare_usd_per_mtok,
        )
