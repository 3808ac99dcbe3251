"""The Prometheus text of /metrics: cumulative histograms with ``le`` buckets."""

from __future__ import annotations

from gptoss_modal.testing._metrics import Histogram


def test_histograms_are_cumulative() -> None:
    """Bucket counts are cumulative and end with +Inf equal to the count."""
    h = Histogram("x", "doc", (0.1, 1.0))
    for v in (0.05, 0.5, 5.0):
        h.observe(v)
    text = h.render('a="b"')
    assert 'x_bucket{a="b",le="0.1"} 1.0' in text
    assert 'x_bucket{a="b",le="1.0"} 2.0' in text
    assert 'x_bucket{a="b",le="+Inf"} 3.0' in text
    assert 'x_count{a="b"} 3.0' in text


def test_a_value_on_a_bound_lands_in_that_bucket() -> None:
    """Prometheus buckets are ``le``: a value equal to a bound counts in that bound's bucket."""
    h = Histogram("x", "doc", (0.1, 1.0))
    for v in (0.0, 0.1, 1.0, 1.0000001):
        h.observe(v)
    assert h.counts == [2, 1, 1]
    assert h.count == 4
