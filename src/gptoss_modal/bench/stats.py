"""The load benchmark's statistics, pure: percentiles, the metric definitions and goodput.

Nothing here does I/O or reads a clock; :mod:`gptoss_modal.bench.driver` measures, this module
computes. ``docs/benchmark.md`` explains every definition with an example.

Percentiles
    :func:`percentile` is linear interpolation between the closest ranks (Hyndman and Fan's
    type 7, the default of ``numpy.percentile`` and so of ``vllm bench serve``, and
    ``statistics.quantiles(method="inclusive")``): sort the n values, take the rank
    ``h = (n - 1) * p / 100`` counted from 0, and interpolate between the values at
    ``floor(h)`` and ``floor(h) + 1``. p0 is the minimum, p100 the maximum, p50 the median.
    :func:`weighted_percentile` is the same on the multiset where each value is repeated
    ``weight`` times (how ITL is summarised per token without building a list per token).

Per request (:func:`request_metrics`, all times from the moment the request was sent)
    ``ttft_chunk``   the first chunk of any kind; in vLLM the empty role chunk, sent when the
                     engine has made the first token. This is what ``vllm bench serve`` calls TTFT.
    ``ttft``         the first chunk carrying generated text: reasoning, content or a tool call
                     (what a user sees first; gpt-oss's first tokens are hidden harmony headers).
    ``ttft_content`` the first chunk carrying content (gpt-oss reasons first, so this is later).
    ``tpot``         (last generated chunk - first chunk) / (output tokens - 1), with the
                     output tokens from the server's usage: the first token is excluded, as in
                     ``vllm bench serve``.
    ``itl``          per token: the gap between consecutive chunks that carry tokens, divided
                     by the tokens the later chunk carries (from ``continuous_usage_stats``), and
                     counted once per token. With ``--stream-interval 10`` a chunk of 10 tokens
                     arriving 200 ms after the previous one gives ten ITLs of 20 ms, not one of
                     200 ms. Without per-chunk counts it falls back to per-chunk gaps.
    ``e2e``          the last chunk (the usage chunk in vLLM; ``[DONE]`` comes with it).

Per level (:func:`summarize_level`): each latency's mean and p50/p90/p95/p99 over the
successful requests (ITL over their tokens), output tokens/s and requests/s over the level's
wall time, errors by kind, and goodput: the successful requests that meet every per-request
limit (:func:`slo_from_limits`).

Budgets are parsed and checked in :mod:`gptoss_modal.bench.budgets`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, pairwise
from typing import Final

# Bits of StreamTrace.flags: what a chunk carries, defined once by the stream layer.
from gptoss_modal.stream.accumulator import time_per_output_token_s
from gptoss_modal.stream.chunks import CHUNK_CHOICES, CHUNK_CONTENT, CHUNK_OUTPUT

__all__ = [
    "CHUNK_CHOICES",
    "CHUNK_CONTENT",
    "CHUNK_OUTPUT",
    "LATENCY_METRICS",
    "PERCENTILES",
    "SLO_METRICS",
    "STATS",
    "Distribution",
    "LevelSummary",
    "RequestMetrics",
    "StreamTrace",
    "meets_slo",
    "percentile",
    "request_metrics",
    "slo_from_limits",
    "summarize_level",
    "weighted_percentile",
]

PERCENTILES: Final = (50.0, 90.0, 95.0, 99.0)
STATS: Final = ("mean", "p50", "p90", "p95", "p99")

# Latencies summarised per level, in the order tables show them.
LATENCY_METRICS: Final = ("ttft_chunk", "ttft", "ttft_content", "tpot", "itl", "e2e", "queue")
# Latencies that have one value per request, so can be a per-request limit (goodput).
SLO_METRICS: Final = ("ttft_chunk", "ttft", "ttft_content", "tpot", "e2e")


_MS: Final = 1000.0


# --- percentiles -------------------------------------------------------------------------------


def _check_p(p: float) -> None:
    if not 0.0 <= p <= 100.0:  # also rejects NaN
        raise ValueError(f"a percentile is within [0, 100], not {p!r}")


def _interpolate(lo_value: float, hi_value: float, fraction: float) -> float:
    value = lo_value + fraction * (hi_value - lo_value)
    # Rounding can step a hair outside the two neighbours; never report a value not between them.
    return min(max(value, lo_value), hi_value)


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile of ``values`` (type 7: linear between the closest ranks).

    Raises ``ValueError`` for no values or ``p`` outside [0, 100].
    """
    _check_p(p)
    if not values:
        raise ValueError("the percentile of no values is undefined")
    xs = sorted(values)
    rank = (len(xs) - 1) * p / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return _interpolate(xs[lo], xs[hi], rank - lo)


def weighted_percentile(values: Sequence[float], weights: Sequence[int], p: float) -> float:
    """The ``p``-th percentile of the multiset where ``values[i]`` occurs ``weights[i]`` times.

    Equal to ``percentile`` of the expanded list, computed without expanding it. Weights are
    non-negative integers with a positive sum; raises ``ValueError`` otherwise.
    """
    _check_p(p)
    return _weighted_at(*_weighted_sorted(values, weights), p)


def _weighted_sorted(
    values: Sequence[float], weights: Sequence[int]
) -> tuple[list[float], list[int]]:
    """The values with a positive weight, sorted, and the running total of their weights."""
    if len(values) != len(weights):
        raise ValueError(f"{len(values)} values but {len(weights)} weights")
    if any(w < 0 for w in weights):
        raise ValueError("weights are counts, so not negative")
    pairs = sorted((v, w) for v, w in zip(values, weights, strict=True) if w > 0)
    if not pairs:
        raise ValueError("the percentile of no values is undefined")
    return [v for v, _ in pairs], list(accumulate(w for _, w in pairs))


def _weighted_at(xs: list[float], ends: list[int], p: float) -> float:
    # ends[i] is how many expanded values are <= xs[i]: the value at expanded rank r (from 0)
    # is xs[i] for the first i with ends[i] > r.
    rank = (ends[-1] - 1) * p / 100.0
    lo = math.floor(rank)
    hi = min(lo + 1, ends[-1] - 1)
    return _interpolate(xs[bisect_right(ends, lo)], xs[bisect_right(ends, hi)], rank - lo)


@dataclass(frozen=True, slots=True)
class Distribution:
    """A summary of samples: how many, their mean, p50/p90/p95/p99, min and max."""

    count: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Distribution | None:
        """The summary of ``values``; ``None`` when there are none."""
        if not values:
            return None
        xs = sorted(values)
        return cls(
            count=len(xs),
            mean=math.fsum(xs) / len(xs),
            p50=percentile(xs, 50.0),
            p90=percentile(xs, 90.0),
            p95=percentile(xs, 95.0),
            p99=percentile(xs, 99.0),
            min=xs[0],
            max=xs[-1],
        )

    @classmethod
    def of_weighted(cls, values: Sequence[float], weights: Sequence[int]) -> Distribution | None:
        """The summary of ``values[i]`` counted ``weights[i]`` times; ``None`` when empty."""
        if sum(weights) <= 0:
            return None
        xs, ends = _weighted_sorted(values, weights)
        total = ends[-1]
        return cls(
            count=total,
            mean=math.fsum(v * w for v, w in zip(values, weights, strict=True)) / total,
            p50=_weighted_at(xs, ends, 50.0),
            p90=_weighted_at(xs, ends, 90.0),
            p95=_weighted_at(xs, ends, 95.0),
            p99=_weighted_at(xs, ends, 99.0),
            min=xs[0],
            max=xs[-1],
        )

    def stat(self, name: str) -> float:
        """One statistic by name: ``mean``, ``p50``, ``p90``, ``p95``, ``p99``, ``min``, ``max``."""
        value: float = getattr(self, name)
        return value

    def scaled(self, factor: float) -> dict[str, float]:
        """Every statistic times ``factor`` (1000 for milliseconds), with the count as is."""
        out: dict[str, float] = {"count": self.count}
        for name in ("mean", "p50", "p90", "p95", "p99", "min", "max"):
            out[name] = getattr(self, name) * factor
        return out


# --- one request -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamTrace:
    """What a streamed request measured: when it was sent, and each chunk's arrival.

    ``arrivals[i]`` is when chunk ``i`` arrived (seconds on the same clock as ``sent``; one
    stamp per network read). ``usage_tokens[i]`` is the running ``completion_tokens`` the
    chunk's usage reported (continuous usage stats), ``None`` when it had no usage.
    ``flags[i]`` holds :data:`CHUNK_CHOICES`, :data:`CHUNK_OUTPUT`, :data:`CHUNK_CONTENT` bits.
    ``completion_tokens`` and ``prompt_tokens`` come from the final usage, when sent.
    """

    sent: float
    arrivals: Sequence[float]
    usage_tokens: Sequence[int | None]
    flags: Sequence[int]
    completion_tokens: int | None = None
    prompt_tokens: int | None = None

    def __post_init__(self) -> None:
        if not len(self.arrivals) == len(self.usage_tokens) == len(self.flags):
            raise ValueError("arrivals, usage_tokens and flags must have one entry per chunk")


@dataclass(frozen=True, slots=True)
class RequestMetrics:
    """One request's latencies in seconds (``None`` when the stream had no such chunk).

    ``itl_s[i]`` is a per-token ITL that ``itl_tokens[i]`` tokens share; ``itl_per_token`` says
    whether token counts came from continuous usage (else ``itl_s`` are per-chunk gaps).
    ``output_tokens`` is the usage count (``tokens_from_usage``) or, without usage, the number
    of chunks that carried text.
    """

    ttft_chunk_s: float | None
    ttft_s: float | None
    ttft_content_s: float | None
    tpot_s: float | None
    e2e_s: float | None
    output_tokens: int
    prompt_tokens: int | None
    tokens_from_usage: bool
    itl_s: tuple[float, ...] = ()
    itl_tokens: tuple[int, ...] = ()
    itl_per_token: bool = True

    @property
    def stream_tokens_per_s(self) -> float | None:
        """The request's decode speed after its first token: 1 / TPOT."""
        return None if not self.tpot_s else 1.0 / self.tpot_s

    def latency(self, metric: str) -> float | None:
        """A per-request latency by metric name (``ttft``, ``tpot``, ``e2e``, ...)."""
        value: float | None = getattr(self, f"{metric}_s")
        return value


@dataclass(slots=True)
class _Stamps:
    """When a trace's first chunk, first output, first content and last choice arrived."""

    first_chunk: float | None = None
    first_output: float | None = None
    first_content: float | None = None
    last_generated: float | None = None

    @classmethod
    def of(cls, arrivals: Sequence[float], flags: Sequence[int]) -> _Stamps:
        stamps = cls()
        for arrival, bits in zip(arrivals, flags, strict=True):
            if bits & CHUNK_CHOICES:
                if stamps.first_chunk is None:
                    stamps.first_chunk = arrival
                stamps.last_generated = arrival
            if bits & CHUNK_OUTPUT and stamps.first_output is None:
                stamps.first_output = arrival
            if bits & CHUNK_CONTENT and stamps.first_content is None:
                stamps.first_content = arrival
        return stamps


def _itl_per_token(
    arrivals: Sequence[float], usage: Sequence[int | None]
) -> tuple[list[float], list[int]]:
    """Per-token ITLs and the tokens sharing each, from the running usage counts."""
    values: list[float] = []
    weights: list[int] = []
    # Chunks that carry tokens are those whose running count went up; the first of them holds
    # the first token (and any hidden ones before it), so gaps start after it.
    previous_count = 0
    previous_at: float | None = None
    for arrival, count in zip(arrivals, usage, strict=True):
        if count is None or count <= previous_count:
            continue
        if previous_at is not None:
            added = count - previous_count
            values.append((arrival - previous_at) / added)
            weights.append(added)
        previous_count, previous_at = count, arrival
    return values, weights


def _itl_per_chunk(
    arrivals: Sequence[float], flags: Sequence[int]
) -> tuple[list[float], list[int]]:
    """Gaps between chunks that carried text, one each (no per-chunk token counts)."""
    stamps = [a for a, bits in zip(arrivals, flags, strict=True) if bits & CHUNK_OUTPUT]
    values = [b - a for a, b in pairwise(stamps)]
    return values, [1] * len(values)


def _output_tokens(trace: StreamTrace) -> tuple[int, bool]:
    """The output tokens, and whether they came from the server's usage."""
    if trace.completion_tokens is not None:
        return trace.completion_tokens, True
    usage_counts = [u for u in trace.usage_tokens if u is not None]
    if usage_counts:
        return max(usage_counts), True
    return sum(1 for bits in trace.flags if bits & CHUNK_OUTPUT), False


def request_metrics(trace: StreamTrace) -> RequestMetrics:
    """The metric definitions (see the module docstring) applied to one request's trace."""
    sent, arrivals, usage, flags = trace.sent, trace.arrivals, trace.usage_tokens, trace.flags
    stamps = _Stamps.of(arrivals, flags)
    per_token = bool(arrivals) and all(
        u is not None for u, bits in zip(usage, flags, strict=True) if bits & CHUNK_CHOICES
    )
    itl_values, itl_weights = (
        _itl_per_token(arrivals, usage) if per_token else _itl_per_chunk(arrivals, flags)
    )
    output_tokens, from_usage = _output_tokens(trace)
    first_chunk, last_generated = stamps.first_chunk, stamps.last_generated
    tpot = time_per_output_token_s(output_tokens, first_chunk, last_generated)  # as chat's

    def since(t: float | None) -> float | None:
        return None if t is None else t - sent

    return RequestMetrics(
        ttft_chunk_s=since(first_chunk),
        ttft_s=since(stamps.first_output),
        ttft_content_s=since(stamps.first_content),
        tpot_s=tpot,
        e2e_s=since(arrivals[-1]) if arrivals else None,
        output_tokens=output_tokens,
        prompt_tokens=trace.prompt_tokens,
        tokens_from_usage=from_usage,
        itl_s=tuple(itl_values),
        itl_tokens=tuple(itl_weights),
        itl_per_token=per_token,
    )


def meets_slo(metrics: RequestMetrics, slo_s: Mapping[str, float]) -> bool:
    """Whether a (successful) request is within every per-request limit (seconds by metric).

    A limit on a latency the request does not have (no content, one token) is not met.
    """
    for metric, limit in slo_s.items():
        value = metrics.latency(metric)
        if value is None or value > limit:
            return False
    return True


def slo_from_limits(limits: Mapping[str, float]) -> dict[str, float]:
    """Per-request limits in seconds, by metric, from a level's budget.

    ``<metric>_ms`` is the limit when given; otherwise the loosest of that metric's
    ``<metric>_<stat>_ms`` limits (a request slower than every percentile budget on that
    metric cannot count as good). ITL and queueing have no per-request value, so no limit.
    """
    slo: dict[str, float] = {}
    for metric in SLO_METRICS:
        explicit = limits.get(f"{metric}_ms")
        if explicit is not None:
            slo[metric] = explicit / _MS
            continue
        stats = [limits[k] for k in (f"{metric}_{s}_ms" for s in STATS) if k in limits]
        if stats:
            slo[metric] = max(stats) / _MS
    return slo


# --- one level ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LevelSummary:
    """What one load level measured. Latency distributions are in seconds, keyed by metric.

    Rates are over ``duration_s``, the level's wall time from its first request sent to its
    last one finished. Only successful requests count towards latencies, tokens and goodput;
    ``errors`` counts the failed ones by kind. Goodput fields are ``None`` without limits.
    """

    requests: int
    completed: int
    failed: int
    errors: dict[str, int]
    duration_s: float
    input_tokens: int
    output_tokens: int
    output_tokens_per_s: float
    requests_per_s: float
    error_rate: float
    latency: dict[str, Distribution | None]
    stream_tokens_per_s: Distribution | None
    itl_per_token: bool
    good_requests: int | None = None
    goodput_per_s: float | None = None
    goodput_fraction: float | None = None
    slo_s: dict[str, float] = field(default_factory=dict)


def summarize_level(
    ok: Sequence[RequestMetrics],
    errors: Mapping[str, int],
    duration_s: float,
    *,
    queue_s: Sequence[float] = (),
    slo_s: Mapping[str, float] | None = None,
) -> LevelSummary:
    """Summarise a level from its successful requests' metrics and its failures by kind.

    ``queue_s`` are client-side queueing times (open loop: from a request's scheduled arrival
    to its send). ``slo_s`` are per-request limits (:func:`slo_from_limits`); goodput is
    reported only when some are given.
    """
    failed = sum(errors.values())
    requests = len(ok) + failed
    per_s = 1.0 / duration_s if duration_s > 0 else 0.0
    latency: dict[str, Distribution | None] = {}
    for metric in SLO_METRICS:
        latency[metric] = Distribution.of([v for m in ok if (v := m.latency(metric)) is not None])
    itl_values = [v for m in ok for v in m.itl_s]
    itl_weights = [w for m in ok for w in m.itl_tokens]
    latency["itl"] = Distribution.of_weighted(itl_values, itl_weights)
    latency["queue"] = Distribution.of(list(queue_s))
    latency = {metric: latency[metric] for metric in LATENCY_METRICS}
    output_tokens = sum(m.output_tokens for m in ok)
    good = goodput = fraction = None
    if slo_s:
        good = sum(1 for m in ok if meets_slo(m, slo_s))
        goodput = good * per_s
        fraction = good / requests if requests else 0.0
    return LevelSummary(
        requests=requests,
        completed=len(ok),
        failed=failed,
        errors=dict(sorted(errors.items())),
        duration_s=duration_s,
        input_tokens=sum(m.prompt_tokens or 0 for m in ok),
        output_tokens=output_tokens,
        output_tokens_per_s=output_tokens * per_s,
        requests_per_s=len(ok) * per_s,
        error_rate=failed / requests if requests else 0.0,
        latency=latency,
        stream_tokens_per_s=Distribution.of(
            [r for m in ok if (r := m.stream_tokens_per_s) is not None]
        ),
        itl_per_token=all(m.itl_per_token for m in ok),
        good_requests=good,
        goodput_per_s=goodput,
        goodput_fraction=fraction,
        slo_s=dict(slo_s or {}),
    )
