"""Cold start measured like every other latency: ``gptoss-modal bench cold-start URL``.

One sample: make the deployment cold (see below), then, from that instant (``t0``), poll
``/health`` until it answers 200 (the first probe is what wakes a scaled-to-zero Modal app),
then stream one short chat. Three times, each from ``t0``:

- ``healthy_s``: the first 200 from ``/health``;
- ``ttft_s``: the first generated token (reasoning or content);
- ``first_content_s``: the first content token (gpt-oss reasons first).

Several samples give percentiles (the bench's type-7 :func:`~gptoss_modal.bench.stats.percentile`)
in a JSON document of its own kind (``"kind": "cold_start"``).

How a deployment becomes cold is a strategy (``make_cold``): wait a fixed idle time (longer than
the app's scale-down window), or, with Modal credentials, poll the deployed function's
``get_current_stats()`` until it has no runner (:func:`modal_idle`). The tests pass one that
restarts a mock with a cold start of N seconds. Health checks come at most ``poll_s`` apart, so
the measured time to healthy is late by at most that much.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from gptoss_modal._exceptions import BenchmarkError, ConfigError, GptossModalError
from gptoss_modal.bench.stats import percentile

__all__ = [
    "COLD_START_FORMAT",
    "METRICS",
    "ColdStartRun",
    "ColdStartSample",
    "fixed_idle",
    "measure_cold_starts",
    "modal_idle",
    "runners_idle",
]

COLD_START_FORMAT = 1
METRICS = ("healthy_s", "ttft_s", "first_content_s")
PERCENTILES = (50.0, 90.0, 99.0)
DEFAULT_POLL_S = 1.0  # between /health checks: the resolution of healthy_s
DEFAULT_HEALTH_TIMEOUT_S = 30 * 60.0  # a first start on a new GPU compiles for 10-15 minutes
PROMPT = "Say hello in one short sentence."
MAX_TOKENS = 256
MODAL_STATS_POLL_S = 10.0  # between get_current_stats() calls while waiting for zero runners

MakeCold = Callable[[int], Awaitable[None]]  # called with the sample's index, before t0


@dataclass(frozen=True)
class ColdStartSample:
    """One cold start, in seconds from the first request (``None``: never arrived)."""

    healthy_s: float
    ttft_s: float | None
    first_content_s: float | None
    health_checks: int
    error: str | None = None


@dataclass
class ColdStartRun:
    """Every sample of a cold-start measurement and their percentiles."""

    url: str
    start_mode: str  # what the user says the deployment is: "plain", "snapshot" or "unknown"
    samples: list[ColdStartSample] = field(default_factory=list)

    def summary(self) -> dict[str, dict[str, float]]:
        """Per metric: p50, p90, p99, min, max and mean over the samples that have it."""
        out: dict[str, dict[str, float]] = {}
        for name in METRICS:
            values = [v for s in self.samples if (v := getattr(s, name)) is not None]
            if not values:
                continue
            stats = {f"p{p:g}": percentile(values, p) for p in PERCENTILES}
            stats |= {"min": min(values), "max": max(values), "mean": sum(values) / len(values)}
            out[name] = stats
        return out

    def to_json(self) -> dict[str, Any]:
        """The bench's JSON for this kind of run."""
        return {
            "kind": "cold_start",
            "format": COLD_START_FORMAT,
            "url": self.url,
            "start_mode": self.start_mode,
            "samples": [asdict(s) for s in self.samples],
            "summary": self.summary(),
        }


def fixed_idle(
    seconds: float, sleep: Callable[[float], Awaitable[object]] = asyncio.sleep
) -> MakeCold:
    """Wait ``seconds`` before each sample (longer than the app's scale-down window)."""
    if seconds < 0:
        raise ConfigError("idle_s", seconds, ">= 0 seconds")

    async def make_cold(index: int) -> None:
        await sleep(seconds)

    return make_cold


def runners_idle(
    count_runners: Callable[[], Awaitable[int]],
    *,
    what: str,
    timeout_s: float = 3600.0,
    poll_s: float = MODAL_STATS_POLL_S,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> MakeCold:
    """Poll ``count_runners()`` until it is 0 (no live container), at most ``timeout_s``."""

    async def make_cold(index: int) -> None:
        waited = 0.0
        while (runners := await count_runners()) > 0:
            if waited >= timeout_s:
                raise BenchmarkError(f"{what} still had {runners} containers after {timeout_s:g} s")
            await sleep(poll_s)
            waited += poll_s

    return make_cold


def modal_idle(
    app_name: str, function_name: str = "serve", *, timeout_s: float = 3600.0
) -> MakeCold:
    """Wait until the deployed function has no runner, by its ``get_current_stats()`` (needs
    Modal credentials). ``function_name`` is ``serve`` in plain mode."""

    async def count_runners() -> int:
        import modal  # only here: the bench does not need Modal otherwise

        function = modal.Function.from_name(app_name, function_name)
        try:
            stats = await function.get_current_stats.aio()
        except modal.exception.Error as exc:
            raise BenchmarkError(f"Modal stats for {app_name}/{function_name}: {exc}") from exc
        return int(stats.num_total_runners)

    return runners_idle(count_runners, what=f"{app_name}/{function_name}", timeout_s=timeout_s)


async def _sample(
    url: str,
    *,
    api_key: str | None,
    headers: Mapping[str, str],
    model: str | None,
    poll_s: float,
    health_timeout_s: float,
) -> ColdStartSample:
    from gptoss_modal.stream.client import Client

    async def capped(delay: float) -> None:  # the client's backoff, never beyond poll_s
        await asyncio.sleep(min(delay, poll_s))

    t0 = time.perf_counter()
    async with Client(url, api_key=api_key, headers=headers, model=model, sleep=capped) as client:
        health = await client.wait_healthy(timeout_s=health_timeout_s)
        healthy_s = time.perf_counter() - t0
        try:
            result = await client.chat(PROMPT, reasoning_effort="low", max_tokens=MAX_TOKENS)
        except GptossModalError as exc:  # healthy but the request failed: keep the sample
            return ColdStartSample(
                healthy_s, None, None, health.attempts, f"{type(exc).__name__}: {exc}"
            )
    since = result.started - t0  # the chat's own times are from its start
    return ColdStartSample(
        healthy_s=healthy_s,
        ttft_s=None if result.ttft_s is None else since + result.ttft_s,
        first_content_s=None if result.ttft_content_s is None else since + result.ttft_content_s,
        health_checks=health.attempts,
    )


async def measure_cold_starts(
    url: str,
    *,
    make_cold: MakeCold,
    runs: int = 3,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    model: str | None = None,
    start_mode: str = "unknown",
    poll_s: float = DEFAULT_POLL_S,
    health_timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
    on_sample: Callable[[int, ColdStartSample], None] | None = None,
) -> ColdStartRun:
    """``runs`` cold starts of the deployment at ``url``; each after ``make_cold(i)``."""
    if runs < 1:
        raise ConfigError("runs", runs, "at least 1")
    if poll_s <= 0:
        raise ConfigError("poll_s", poll_s, "> 0 seconds")
    run = ColdStartRun(url, start_mode)
    for index in range(runs):
        await make_cold(index)
        sample = await _sample(
            url,
            api_key=api_key,
            headers=headers or {},
            model=model,
            poll_s=poll_s,
            health_timeout_s=health_timeout_s,
        )
        run.samples.append(sample)
        if on_sample is not None:
            on_sample(index, sample)
    return run
