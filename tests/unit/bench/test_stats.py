"""The benchmark's pure statistics: percentiles, metric definitions and goodput."""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Sequence

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from gptoss_modal.bench.budgets import measured_values
from gptoss_modal.bench.stats import (
    CHUNK_CHOICES,
    CHUNK_CONTENT,
    CHUNK_OUTPUT,
    LATENCY_METRICS,
    Distribution,
    RequestMetrics,
    StreamTrace,
    meets_slo,
    percentile,
    request_metrics,
    slo_from_limits,
    summarize_level,
    weighted_percentile,
)

FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
SAMPLES = st.lists(FINITE, min_size=1, max_size=60)
PCT = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


def reference_percentile(values: Sequence[float], p: float) -> float:
    """Type 7 written the slow, obvious way: position (n - 1) * p / 100 in the sorted list."""
    xs = sorted(values)
    position = (len(xs) - 1) * p / 100
    below = int(position)
    if below >= len(xs) - 1:
        return xs[-1]
    return xs[below] + (position - below) * (xs[below + 1] - xs[below])


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


# --- percentiles -------------------------------------------------------------------------------


def test_percentile_interpolates_between_closest_ranks() -> None:
    """p50 of 1..4 is 2.5 and p90 of 1..10 is 9.1 (type 7), not a nearest-rank value."""
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([float(i) for i in range(1, 11)], 90) == pytest.approx(9.1)


def test_percentile_ends_are_min_and_max() -> None:
    """p0 is the minimum and p100 the maximum."""
    assert percentile([5.0, -2.0, 9.0], 0) == -2.0
    assert percentile([5.0, -2.0, 9.0], 100) == 9.0


def test_percentile_of_one_value_is_that_value() -> None:
    """Every percentile of a single sample is the sample."""
    assert {percentile([7.5], p) for p in (0, 1, 50, 99, 100)} == {7.5}


@pytest.mark.parametrize("p", [-0.1, 100.1, math.nan])
def test_percentile_outside_0_100_is_refused(p: float) -> None:
    """A percentile outside [0, 100] (or NaN) raises ValueError."""
    with pytest.raises(ValueError, match="within"):
        percentile([1.0], p)


def test_percentile_of_nothing_is_refused() -> None:
    """The percentile of no values raises ValueError instead of inventing a number."""
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


@given(SAMPLES, PCT, PCT)
def test_percentile_is_bounded_and_monotone(values: list[float], p: float, q: float) -> None:
    """Any percentile lies within [min, max] and never decreases as p grows."""
    lo, hi = sorted((p, q))
    assert min(values) <= percentile(values, lo) <= percentile(values, hi) <= max(values)


@given(SAMPLES, PCT)
def test_percentile_matches_the_reference(values: list[float], p: float) -> None:
    """percentile equals the obvious type-7 reference (a nearest-rank or mean shortcut fails)."""
    assert close(percentile(values, p), reference_percentile(values, p))


@given(st.lists(FINITE, min_size=2, max_size=60))
def test_percentile_matches_statistics_inclusive(values: list[float]) -> None:
    """Integer percentiles equal the stdlib's statistics.quantiles(method='inclusive')."""
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for p, expected in zip(range(1, 100), cuts, strict=True):
        assert close(percentile(values, p), expected)


@given(SAMPLES, PCT, st.randoms(use_true_random=False))
def test_percentile_ignores_order(values: list[float], p: float, rnd: random.Random) -> None:
    """Shuffling the samples does not change a percentile."""
    shuffled = list(values)
    rnd.shuffle(shuffled)
    assert percentile(shuffled, p) == percentile(values, p)


# --- weighted percentiles ----------------------------------------------------------------------

WEIGHTED = st.lists(st.tuples(FINITE, st.integers(0, 6)), min_size=1, max_size=30).filter(
    lambda pairs: sum(w for _, w in pairs) > 0
)


def expand(pairs: Sequence[tuple[float, int]]) -> list[float]:
    return [v for v, w in pairs for _ in range(w)]


@given(WEIGHTED, PCT)
def test_weighted_percentile_equals_the_expanded_list(
    pairs: list[tuple[float, int]], p: float
) -> None:
    """A value of weight w counts as w copies: equal to percentile of the expanded list."""
    values, weights = [v for v, _ in pairs], [w for _, w in pairs]
    assert close(weighted_percentile(values, weights, p), percentile(expand(pairs), p))


@given(WEIGHTED, PCT)
def test_weighted_percentile_is_bounded_by_present_values(
    pairs: list[tuple[float, int]], p: float
) -> None:
    """The result lies between the smallest and largest value that has a positive weight."""
    present = [v for v, w in pairs if w > 0]
    values, weights = [v for v, _ in pairs], [w for _, w in pairs]
    assert min(present) <= weighted_percentile(values, weights, p) <= max(present)


def test_weighted_percentile_uses_the_weights() -> None:
    """[1 x1, 10 x3]: the median is 10, where ignoring weights would give 5.5."""
    assert weighted_percentile([1.0, 10.0], [1, 3], 50) == 10.0


@pytest.mark.parametrize(
    ("values", "weights", "message"),
    [([1.0], [1, 2], "weights"), ([1.0], [-1], "not negative"), ([1.0, 2.0], [0, 0], "no values")],
)
def test_weighted_percentile_refuses_bad_weights(
    values: list[float], weights: list[int], message: str
) -> None:
    """Mismatched lengths, negative weights or no positive weight raise ValueError."""
    with pytest.raises(ValueError, match=message):
        weighted_percentile(values, weights, 50)


@given(WEIGHTED)
def test_weighted_distribution_equals_distribution_of_expanded(
    pairs: list[tuple[float, int]],
) -> None:
    """Distribution.of_weighted summarises exactly like Distribution.of on the expanded list."""
    values, weights = [v for v, _ in pairs], [w for _, w in pairs]
    weighted = Distribution.of_weighted(values, weights)
    plain = Distribution.of(expand(pairs))
    assert weighted is not None
    assert plain is not None
    assert weighted.count == plain.count
    for name in ("mean", "p50", "p90", "p95", "p99", "min", "max"):
        assert math.isclose(weighted.stat(name), plain.stat(name), rel_tol=1e-9, abs_tol=1e-5)


def test_distribution_of_nothing_is_none() -> None:
    """No samples summarise to None, not to zeros."""
    assert Distribution.of([]) is None
    assert Distribution.of_weighted([1.0], [0]) is None


def test_distribution_scaled_converts_units_but_not_the_count() -> None:
    """scaled(1000) turns seconds into milliseconds and leaves the count alone."""
    dist = Distribution.of([0.1, 0.2, 0.3])
    assert dist is not None
    scaled = dist.scaled(1000)
    assert scaled["count"] == 3
    assert scaled["p50"] == pytest.approx(200.0)


# --- the metric definitions --------------------------------------------------------------------


def vllm_trace(
    *,
    ttft: float,
    itl: float,
    tokens: int,
    interval: int = 1,
    hidden: int = 3,
    content_from: int | None = None,
    sent: float = 100.0,
    continuous: bool = True,
) -> StreamTrace:
    """A stream as vLLM sends it for gpt-oss: the role chunk at the first token, ``hidden``
    harmony tokens that make no chunk, outputs every ``interval`` tokens, the rest flushed on
    the finishing chunk, then the usage chunk. Token i is made at ttft + i * itl."""
    arrivals: list[float] = [sent + ttft]
    usage: list[int | None] = [0 if continuous else None]
    flags = [CHUNK_CHOICES]
    sent_count = 0
    for i in range(tokens):
        made = i + 1
        last = i == tokens - 1
        due = interval <= 1 or last or sent_count == 0 or made - sent_count >= interval
        if not due:
            continue
        sent_count = made  # an output is sent; it makes a chunk only if it has text or ends
        visible = i >= hidden
        if not visible and not last:
            continue
        bits = CHUNK_CHOICES
        if visible:
            bits |= CHUNK_OUTPUT
            if content_from is not None and i >= content_from:
                bits |= CHUNK_CONTENT
        arrivals.append(sent + ttft + i * itl)
        usage.append(made if continuous else None)
        flags.append(bits)
    arrivals.append(arrivals[-1])  # the usage chunk, written with the last one
    usage.append(tokens if continuous else None)
    flags.append(0)
    return StreamTrace(
        sent=sent,
        arrivals=arrivals,
        usage_tokens=usage,
        flags=flags,
        completion_tokens=tokens,
        prompt_tokens=50,
    )


def test_ttft_is_reported_three_ways() -> None:
    """TTFT: the role chunk, the first visible token, and the first content token."""
    m = request_metrics(vllm_trace(ttft=0.5, itl=0.02, tokens=40, hidden=3, content_from=30))
    assert m.ttft_chunk_s == pytest.approx(0.5)
    assert m.ttft_s == pytest.approx(0.5 + 3 * 0.02)
    assert m.ttft_content_s == pytest.approx(0.5 + 30 * 0.02)


def test_itl_is_per_token_under_stream_interval() -> None:
    """At --stream-interval 10 and 20 ms/token ITL is 20 ms per token, not a 200 ms chunk gap."""
    m = request_metrics(vllm_trace(ttft=0.2, itl=0.02, tokens=101, interval=10))
    assert m.itl_per_token
    dist = Distribution.of_weighted(m.itl_s, m.itl_tokens)
    assert dist is not None
    assert dist.p50 == pytest.approx(0.02)
    assert dist.p99 == pytest.approx(0.02)


def test_itl_without_continuous_usage_falls_back_to_chunk_gaps() -> None:
    """Without per-chunk token counts ITL is the per-chunk gap, and says so."""
    m = request_metrics(vllm_trace(ttft=0.2, itl=0.02, tokens=101, interval=10, continuous=False))
    assert not m.itl_per_token
    assert set(m.itl_tokens) == {1}
    assert max(m.itl_s) == pytest.approx(0.2)


def test_tpot_excludes_the_first_token_and_uses_usage() -> None:
    """TPOT = (last generated chunk - first chunk) / (usage tokens - 1)."""
    m = request_metrics(vllm_trace(ttft=0.3, itl=0.01, tokens=64, interval=20))
    assert m.tpot_s == pytest.approx(0.01)
    assert m.output_tokens == 64
    assert m.tokens_from_usage
    assert m.stream_tokens_per_s == pytest.approx(100.0)


def test_e2e_ends_at_the_last_chunk() -> None:
    """End-to-end latency runs from the send to the last chunk (the usage chunk)."""
    m = request_metrics(vllm_trace(ttft=0.25, itl=0.01, tokens=11, sent=5.0))
    assert m.e2e_s == pytest.approx(0.25 + 10 * 0.01)


def test_one_token_has_no_tpot() -> None:
    """A one-token reply has no TPOT (no token after the first)."""
    m = request_metrics(vllm_trace(ttft=0.1, itl=0.01, tokens=1, hidden=0))
    assert m.tpot_s is None
    assert m.stream_tokens_per_s is None


def test_without_usage_output_tokens_are_counted_from_chunks() -> None:
    """No usage at all: output tokens are the chunks that carried text, marked as such."""
    trace = StreamTrace(
        sent=0.0,
        arrivals=[0.1, 0.2, 0.3],
        usage_tokens=[None, None, None],
        flags=[CHUNK_CHOICES, CHUNK_CHOICES | CHUNK_OUTPUT, CHUNK_CHOICES | CHUNK_OUTPUT],
    )
    m = request_metrics(trace)
    assert m.output_tokens == 2
    assert not m.tokens_from_usage


def test_an_empty_trace_has_no_latencies() -> None:
    """A stream with no chunk has no TTFT, TPOT or e2e and zero output tokens."""
    m = request_metrics(StreamTrace(sent=0.0, arrivals=[], usage_tokens=[], flags=[]))
    assert (m.ttft_chunk_s, m.ttft_s, m.tpot_s, m.e2e_s, m.output_tokens) == (
        None,
        None,
        None,
        None,
        0,
    )


def test_trace_fields_must_line_up() -> None:
    """A trace whose per-chunk lists differ in length is refused."""
    with pytest.raises(ValueError, match="one entry per chunk"):
        StreamTrace(sent=0.0, arrivals=[1.0], usage_tokens=[], flags=[1])


SERVER = st.fixed_dictionaries(
    {
        "ttft": st.floats(0.001, 5.0),
        "itl": st.floats(0.001, 0.2),
        "tokens": st.integers(2, 300),
        "interval": st.integers(1, 32),
        "hidden": st.integers(0, 5),
    }
)


@given(SERVER)
def test_metrics_recover_the_server_timing(server: dict[str, float]) -> None:
    """Whatever the stream interval, TPOT and every per-token ITL equal the server's ITL and
    the first-chunk TTFT equals its TTFT (per-chunk gaps would fail as soon as interval > 1)."""
    tokens, interval, hidden = int(server["tokens"]), int(server["interval"]), server["hidden"]
    # Per-token ITL needs two chunks with visible text after the first: with `hidden` header
    # tokens and `interval` tokens per chunk, fewer tokens leave nothing to measure.
    assume(tokens > hidden + 2 * interval)
    m = request_metrics(
        vllm_trace(
            ttft=server["ttft"],
            itl=server["itl"],
            tokens=tokens,
            interval=interval,
            hidden=int(hidden),
        )
    )
    assert m.ttft_chunk_s == pytest.approx(server["ttft"])
    assert m.tpot_s == pytest.approx(server["itl"])
    assert m.itl_s
    assert all(v == pytest.approx(server["itl"]) for v in m.itl_s)


@given(SERVER)
def test_itl_weights_never_exceed_the_tokens(server: dict[str, float]) -> None:
    """The per-token ITLs cover at most the tokens after the first, never more."""
    tokens = int(server["tokens"])
    m = request_metrics(
        vllm_trace(
            ttft=server["ttft"],
            itl=server["itl"],
            tokens=tokens,
            interval=int(server["interval"]),
            hidden=int(server["hidden"]),
        )
    )
    assert sum(m.itl_tokens) <= tokens - 1


# --- goodput and levels ------------------------------------------------------------------------


def metrics(
    ttft: float = 0.1, tpot: float = 0.01, e2e: float = 1.0, tokens: int = 100
) -> RequestMetrics:
    return RequestMetrics(
        ttft_chunk_s=ttft,
        ttft_s=ttft,
        ttft_content_s=None,
        tpot_s=tpot,
        e2e_s=e2e,
        output_tokens=tokens,
        prompt_tokens=10,
        tokens_from_usage=True,
        itl_s=(tpot,),
        itl_tokens=(tokens - 1,),
    )


def test_slo_prefers_the_explicit_per_request_limit() -> None:
    """ttft_ms is the per-request TTFT limit when given, over any ttft percentile budget."""
    assert slo_from_limits({"ttft_ms": 300, "ttft_p99_ms": 900}) == {"ttft": 0.3}


def test_slo_falls_back_to_the_loosest_percentile_budget() -> None:
    """Without ttft_ms, a request is good on TTFT when within the loosest ttft_* budget."""
    assert slo_from_limits({"ttft_p50_ms": 200, "ttft_p99_ms": 800}) == {"ttft": 0.8}


def test_slo_ignores_throughput_and_itl_budgets() -> None:
    """Budgets with no per-request value (ITL, tokens/s, errors) give no per-request limit."""
    assert slo_from_limits({"itl_p99_ms": 50, "min_output_tokens_per_s": 10}) == {}


def test_a_request_missing_a_limited_latency_is_not_good() -> None:
    """A request without content cannot meet a limit on time to first content."""
    assert not meets_slo(metrics(), {"ttft_content": 10.0})
    assert meets_slo(metrics(), {"ttft": 0.1, "tpot": 0.01})
    assert not meets_slo(metrics(ttft=0.2), {"ttft": 0.1})


def test_level_summary_counts_rates_and_errors() -> None:
    """Throughput is over the level's wall time and counts only successful requests."""
    ok = [metrics(tokens=100), metrics(tokens=300)]
    summary = summarize_level(ok, {"http_503": 1, "incomplete_stream": 1}, duration_s=2.0)
    assert (summary.requests, summary.completed, summary.failed) == (4, 2, 2)
    assert summary.output_tokens_per_s == 200.0
    assert summary.requests_per_s == 1.0
    assert summary.error_rate == 0.5
    assert summary.errors == {"http_503": 1, "incomplete_stream": 1}
    assert summary.good_requests is None


def test_level_summary_counts_goodput_against_requests_sent() -> None:
    """Goodput counts successful requests within every limit; its fraction is of all sent."""
    ok = [metrics(ttft=0.1), metrics(ttft=0.5), metrics(ttft=0.2)]
    summary = summarize_level(ok, {"connect": 1}, duration_s=1.0, slo_s={"ttft": 0.25})
    assert summary.good_requests == 2
    assert summary.goodput_per_s == 2.0
    assert summary.goodput_fraction == 0.5


def test_level_summary_has_every_latency_metric() -> None:
    """Every latency metric has an entry, None when nothing measured it."""
    summary = summarize_level([metrics()], {}, duration_s=1.0)
    assert list(summary.latency) == list(LATENCY_METRICS)
    assert summary.latency["ttft_content"] is None
    assert summary.latency["queue"] is None
    itl = summary.latency["itl"]
    assert itl is not None
    assert itl.count == 99


def test_level_summary_of_only_failures_has_no_latencies() -> None:
    """A level where every request failed reports the failures and no made-up latency."""
    summary = summarize_level([], {"connect": 3}, duration_s=1.0)
    assert summary.completed == 0
    assert summary.error_rate == 1.0
    assert all(d is None for d in summary.latency.values())
    values = measured_values(summary)
    assert values["output_tokens_per_s"] is None
    assert values["ttft_p50_ms"] is None
