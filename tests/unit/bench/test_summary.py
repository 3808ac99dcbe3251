"""A level's summary as a pure function of its records, scrapes and limits."""

from __future__ import annotations

from gptoss_modal.bench.prometheus import MetricsSnapshot
from gptoss_modal.bench.records import RequestRecord
from gptoss_modal.bench.settings import Level
from gptoss_modal.bench.summary import LevelMeasurement, summarise
from tests.unit.bench.test_stats import metrics

BEFORE = (
    "vllm:spec_decode_num_drafts_total 0\nvllm:spec_decode_num_draft_tokens_total 0\n"
    "vllm:spec_decode_num_accepted_tokens_total 0\n"
    "vllm:time_to_first_token_seconds_sum 0\nvllm:time_to_first_token_seconds_count 0\n"
)
AFTER = (
    "vllm:spec_decode_num_drafts_total 10\nvllm:spec_decode_num_draft_tokens_total 30\n"
    "vllm:spec_decode_num_accepted_tokens_total 15\n"
    "vllm:time_to_first_token_seconds_sum 0.8\nvllm:time_to_first_token_seconds_count 4\n"
)


def ok(index: int) -> RequestRecord:
    return RequestRecord("c=2", index, True, sent=0.0, metrics=metrics())


def failed(index: int) -> RequestRecord:
    return RequestRecord("c=2", index, False, sent=0.0, error_kind="http_503", error="busy")


def test_records_are_ordered_and_failures_counted_by_kind() -> None:
    """Records come out in index order; the summary counts successes and failures by kind."""
    result = summarise(Level(2), LevelMeasurement([ok(2), failed(1), ok(0)], 2.0, 0.1))
    assert [r.index for r in result.records] == [0, 1, 2]
    assert result.summary.completed == 2
    assert result.summary.errors == {"http_503": 1}
    assert result.cpu_fraction == 0.05
    assert result.limits is None
    assert result.budgets_held is None


def test_scrapes_give_acceptance_and_server_means() -> None:
    """Counters and histograms between the two scrapes give acceptance and server means."""
    measured = LevelMeasurement(
        [ok(0)], 1.0, 0.0, MetricsSnapshot.parse(BEFORE), MetricsSnapshot.parse(AFTER)
    )
    result = summarise(Level(2), measured)
    assert result.spec_decode is not None
    assert result.spec_decode.acceptance_rate == 0.5
    assert result.server_s == {"ttft": 0.2}


def test_limits_are_checked_against_what_was_measured() -> None:
    """Limits give checks; a lower limit on acceptance fails without scrapes."""
    result = summarise(
        Level(2),
        LevelMeasurement([ok(0)], 1.0, 0.0),
        limits={"max_error_rate": 0.0, "min_acceptance_rate": 0.5},
    )
    assert [(c.key, c.passed) for c in result.checks] == [
        ("max_error_rate", True),
        ("min_acceptance_rate", False),
    ]
    assert result.budgets_held is False


def test_the_level_says_what_a_reader_should_know() -> None:
    """Too few requests for the concurrency, a busy client and warm-up failures are warned."""
    measured = LevelMeasurement([ok(0)], 1.0, 0.9, warmup_errors={"connect": 2})
    warnings = summarise(Level(8), measured, planned_requests=1).warnings
    assert [w.split(" ")[0] for w in warnings] == ["client-bound:", "only", "warm-up"]
    assert "connect x2" in warnings[-1]
