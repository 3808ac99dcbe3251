"""A scripted stand-in for the streaming client, for the driver's tests (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gptoss_modal import ChatChunk, ChatResult, Choice, Delta, Usage
from gptoss_modal.bench.budgets import Budgets
from gptoss_modal.bench.results import BenchRun
from gptoss_modal.bench.run import run_benchmark
from gptoss_modal.bench.settings import BenchSettings, Level
from gptoss_modal.stream.client import HealthProgress


class ScriptedStream:
    """A stream that 'receives' a vLLM-shaped gpt-oss reply at scripted offsets."""

    def __init__(
        self,
        client: ScriptedClient,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int,
        extra: Mapping[str, Any] | None,
    ) -> None:
        self.client = client
        self.messages = messages
        self.max_tokens = max_tokens
        self.extra = extra
        self.result = ChatResult()

    async def __aenter__(self) -> ScriptedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def collect(self) -> ChatResult:
        c = self.client
        number = len(c.calls)
        c.calls.append(self)
        result = self.result
        result.started = c.clock()
        result.response_at = result.started
        await asyncio.sleep(0)
        fault = c.faults.get(number)
        if fault is not None and fault[0] == "before":
            raise fault[1]
        words = sum(len(str(m.get("content", "")).split(":")[-1].split()) for m in self.messages)
        prompt = words + c.template
        start = result.started

        def add(offset: float, delta: Delta | None, tokens: int, finish: str | None = None) -> None:
            choices = () if delta is None else (Choice(index=0, delta=delta, finish_reason=finish),)
            usage = Usage(prompt, tokens, prompt + tokens)
            result.chunks.append(ChatChunk(choices=choices, usage=usage, arrival=start + offset))

        add(c.ttft, Delta(role="assistant", content=""), 0)
        for i in range(3, self.max_tokens):  # tokens 0-2 are hidden harmony headers
            last = i == self.max_tokens - 1
            delta = Delta(reasoning="r") if i < self.max_tokens // 2 else Delta(content="c")
            add(c.ttft + i * c.itl, delta, i + 1, "length" if last else None)
            if fault is not None and fault[0] == "after" and i == 5:
                raise fault[1]
        add(c.ttft + (self.max_tokens - 1) * c.itl, None, self.max_tokens)
        result.done = True
        return result


class ScriptedClient:
    """Stands in for the stream Client: every call is recorded, faults by call number.

    ``metrics`` is what ``/metrics`` answers, one text per scrape (the last repeats); an
    exception in it is raised instead.
    """

    base_url = "http://scripted"

    def __init__(self, ttft: float = 0.2, itl: float = 0.01, template: int = 70) -> None:
        self.ttft, self.itl, self.template = ttft, itl, template
        self.calls: list[ScriptedStream] = []
        self.faults: dict[int, tuple[str, BaseException]] = {}
        self.metrics: list[str | BaseException] = []
        self.scrapes = 0
        self.now = 0.0

    def clock(self) -> float:
        self.now += 0.001
        return self.now

    async def wait_healthy(
        self, *, timeout_s: float, on_progress: Callable[[HealthProgress], None] | None = None
    ) -> None:
        return None

    def stream_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        reasoning_effort: str | None,
        max_tokens: int,
        continuous_usage: bool,
        extra: Mapping[str, Any] | None,
    ) -> ScriptedStream:
        assert continuous_usage
        return ScriptedStream(self, messages, max_tokens, extra)

    async def fetch_metrics(self, *, timeout_s: float = 10.0) -> str:
        answer = self.metrics[min(self.scrapes, len(self.metrics) - 1)]
        self.scrapes += 1
        if isinstance(answer, BaseException):
            raise answer
        return answer


def settings(**kwargs: Any) -> BenchSettings:
    """Small settings for a scripted run: one level of 2, 6 requests, no warm-up or scrapes."""
    base: dict[str, Any] = {
        "url": "http://scripted",
        "levels": (Level(2),),
        "requests": 6,
        "warmup": 0,
        "input_tokens": 300,
        "output_tokens": 40,
        "scrape_metrics": False,
    }
    return BenchSettings(**{**base, **kwargs})


def no_cpu() -> float:
    """A CPU clock that never moves: the scripted runs are never client-bound."""
    return 0.0


async def run(
    client: ScriptedClient,
    *,
    budgets: Budgets | None = None,
    cpu_clock: Callable[[], float] = no_cpu,
    **kwargs: Any,
) -> BenchRun:
    """A run of :func:`settings` (overridden by ``kwargs``) on the scripted client."""
    return await run_benchmark(
        settings(**kwargs), client=client, clock=client.clock, cpu_clock=cpu_clock, budgets=budgets
    )
