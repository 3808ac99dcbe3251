"""Reading vLLM's /metrics: the Prometheus text format, spec-decode acceptance, histogram means."""

from __future__ import annotations

import math
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal.bench.prometheus import (
    MetricsFormatError,
    MetricsSnapshot,
    Sample,
    histogram_mean_between,
    parse_metrics,
    spec_decode_between,
)
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

VLLM_TEXT = """\
# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_total counter
vllm:spec_decode_num_drafts_total{model_name="llm",engine="0"} 100.0
vllm:spec_decode_num_drafts_total{model_name="llm",engine="1"} 50.0
# HELP vllm:spec_decode_num_drafts_created Number of spec decoding drafts.
# TYPE vllm:spec_decode_num_drafts_created gauge
vllm:spec_decode_num_drafts_created{model_name="llm",engine="0"} 1.7e+09
vllm:spec_decode_num_draft_tokens_total{model_name="llm",engine="0"} 450.0
vllm:spec_decode_num_accepted_tokens_total{model_name="llm",engine="0"} 300.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name="llm",engine="0",position="0"} 140.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name="llm",engine="0",position="1"} 100.0
vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name="llm",engine="0",position="2"} 60.0
"""


def snapshot(**totals: float) -> MetricsSnapshot:
    """A scrape with the given spec-decode and histogram totals (one label set each)."""
    names = {
        "drafts": "vllm:spec_decode_num_drafts_total",
        "draft_tokens": "vllm:spec_decode_num_draft_tokens_total",
        "accepted": "vllm:spec_decode_num_accepted_tokens_total",
        "ttft_sum": "vllm:time_to_first_token_seconds_sum",
        "ttft_count": "vllm:time_to_first_token_seconds_count",
    }
    lines = [f'{names[k]}{{engine="0"}} {v}' for k, v in totals.items() if k in names]
    lines += [
        f'vllm:spec_decode_num_accepted_tokens_per_pos_total{{position="{k[3:]}"}} {v}'
        for k, v in totals.items()
        if k.startswith("pos")
    ]
    return MetricsSnapshot.parse("\n".join(lines) + "\n")


# --- the text format ---------------------------------------------------------------------------


def test_samples_keep_their_names_labels_and_values() -> None:
    """A sample line gives its full name (with _total), its labels and its value."""
    samples = parse_metrics(VLLM_TEXT)
    assert samples[0] == Sample(
        "vllm:spec_decode_num_drafts_total", {"model_name": "llm", "engine": "0"}, 100.0
    )
    assert len(samples) == 8


def test_comments_and_blank_lines_are_skipped() -> None:
    """HELP, TYPE, other comments and blank lines make no samples."""
    assert parse_metrics("# HELP x y\n\n# TYPE x counter\n# anything\n   \n") == []


def test_label_values_unescape_backslash_quote_and_newline() -> None:
    r"""\\, \" and \n in a label value are one backslash, a quote and a newline."""
    (sample,) = parse_metrics('m{a="x\\\\y",b="say \\"hi\\"",c="l1\\nl2",} 1\n')
    assert sample.labels == {"a": "x\\y", "b": 'say "hi"', "c": "l1\nl2"}


def test_special_values_and_timestamps() -> None:
    """NaN, +Inf and -Inf are values; a trailing integer is a timestamp, not part of it."""
    samples = parse_metrics("a NaN\nb +Inf\nc -Inf 1712345678000\nd 1e-05\n")
    assert math.isnan(samples[0].value)
    assert [s.value for s in samples[1:]] == [math.inf, -math.inf, 1e-05]


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ('m{a="x} 1', "closing quote"),
        ('m{a="\\q"} 1', "unknown escape"),
        ("m{a=x} 1", "label name"),
        ("m", "value"),
        ("m one", "not a number"),
        ("m 1 2 3", "value"),
        ("3m 1", "metric name"),
        ('m{a="x" b="y"} 1', ", or }"),
        ("m-x 1", "neither labels nor a space"),
    ],
)
def test_malformed_lines_raise_naming_the_line(line: str, what: str) -> None:
    """A line that is not a sample raises MetricsFormatError with its number and the problem."""
    with pytest.raises(MetricsFormatError, match=f"line 2: .*{what}"):
        parse_metrics(f"ok 1\n{line}\n")


def test_the_mocks_metrics_parse() -> None:
    """The mock's /metrics text (vLLM's names, histograms, counters) parses without error."""
    text = MockVLLM(MockConfig(num_speculative_tokens=3)).metrics.render()
    snap = MetricsSnapshot.parse(text)
    assert snap.total("vllm:spec_decode_num_drafts") == 0.0
    assert snap.total("vllm:time_to_first_token_seconds_count") == 0.0


_LETTERS = string.ascii_letters + "_"


def _name(first: str, rest: str, max_rest: int) -> st.SearchStrategy[str]:
    """Strings of the regex ``[first][rest]{0,max_rest}``, drawn as plain text: the same names
    as ``st.from_regex``, without its filtering (several times cheaper per draw)."""
    return st.builds(str.__add__, st.sampled_from(first), st.text(rest, max_size=max_rest))


# [a-zA-Z_][a-zA-Z0-9_]{0,8} and [a-zA-Z_:][a-zA-Z0-9_:]{0,20}
LABEL_NAMES = _name(_LETTERS, _LETTERS + string.digits, 8)
METRIC_NAMES = _name(_LETTERS + ":", _LETTERS + string.digits + ":", 20)
LABEL_VALUES = st.text(max_size=12)
VALUES = st.floats(allow_nan=False)


def render_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(samples: list[Sample]) -> str:
    lines = []
    for s in samples:
        labels = ",".join(f'{k}="{render_value(v)}"' for k, v in s.labels.items())
        value = {math.inf: "+Inf", -math.inf: "-Inf"}.get(s.value, repr(s.value))
        lines.append(f"{s.name}{{{labels}}} {value}" if labels else f"{s.name} {value}")
    return "\n".join(lines) + "\n"


SAMPLE_LISTS = st.lists(
    st.builds(Sample, METRIC_NAMES, st.dictionaries(LABEL_NAMES, LABEL_VALUES, max_size=3), VALUES),
    max_size=8,
)


@given(SAMPLE_LISTS)
def test_rendered_samples_parse_back_exactly(samples: list[Sample]) -> None:
    """Any samples written in the exposition format (quotes, commas, braces, newlines and
    backslashes in label values included) parse back to the same samples."""
    assert parse_metrics(render(samples)) == samples


@given(st.lists(st.tuples(LABEL_VALUES, st.floats(0, 1e9)), min_size=1, max_size=6))
def test_total_sums_every_label_set(entries: list[tuple[str, float]]) -> None:
    """total() is the sum over all label sets (engines), found with or without _total."""
    samples = [Sample("c_total", {"engine": str(i), "x": v}, n) for i, (v, n) in enumerate(entries)]
    snap = MetricsSnapshot(samples)
    assert snap.total("c") == pytest.approx(math.fsum(n for _, n in entries))
    assert snap.total("missing") is None


# --- spec decode and histograms ----------------------------------------------------------------


def test_acceptance_is_computed_from_counter_differences() -> None:
    """Rate Δaccepted/Δdraft_tokens, length 1 + Δaccepted/Δdrafts, per-position Δpos/Δdrafts."""
    before = snapshot(drafts=10, draft_tokens=30, accepted=15, pos0=8, pos1=5, pos2=2)
    after = snapshot(drafts=110, draft_tokens=330, accepted=195, pos0=98, pos1=65, pos2=32)
    spec = spec_decode_between(before, after)
    assert spec is not None
    assert (spec.drafts, spec.draft_tokens, spec.accepted) == (100, 300, 180)
    assert spec.acceptance_rate == pytest.approx(0.6)
    assert spec.acceptance_length == pytest.approx(2.8)
    assert spec.per_position == pytest.approx((0.9, 0.6, 0.3))


def test_acceptance_sums_engines() -> None:
    """Counters of several engines (data parallel) are added before dividing."""
    spec = spec_decode_between(MetricsSnapshot([]), MetricsSnapshot.parse(VLLM_TEXT))
    assert spec is not None
    assert spec.drafts == 150
    assert spec.acceptance_length == pytest.approx(1 + 300 / 150)


def test_no_spec_decode_counters_means_no_acceptance() -> None:
    """A server without speculative decoding reports no acceptance at all (None)."""
    assert spec_decode_between(snapshot(), snapshot()) is None


def test_no_drafts_in_the_window_gives_no_rates() -> None:
    """Counters present but unchanged: counts are zero and the rates None, not 0 or NaN."""
    same = snapshot(drafts=5, draft_tokens=15, accepted=9)
    spec = spec_decode_between(same, same)
    assert spec is not None
    assert spec.acceptance_rate is None
    assert spec.acceptance_length is None
    assert spec.per_position == ()


def test_counters_going_backwards_give_none() -> None:
    """A server restart between scrapes (counters lower after) gives None, not a negative rate."""
    before = snapshot(drafts=100, draft_tokens=300, accepted=200)
    after = snapshot(drafts=10, draft_tokens=30, accepted=20)
    assert spec_decode_between(before, after) is None


def test_histogram_mean_over_the_window() -> None:
    """A histogram's mean between scrapes is Δsum/Δcount; None when nothing was observed."""
    before, after = snapshot(ttft_sum=1.0, ttft_count=4), snapshot(ttft_sum=3.0, ttft_count=14)
    assert histogram_mean_between(before, after, "vllm:time_to_first_token_seconds") == 0.2
    assert histogram_mean_between(after, after, "vllm:time_to_first_token_seconds") is None
    assert histogram_mean_between(before, after, "vllm:request_queue_time_seconds") is None
