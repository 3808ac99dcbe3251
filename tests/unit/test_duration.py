"""The one duration parser the benchmark's settings and the CLI options share."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import ConfigError
from gptoss_modal._duration import parse_duration

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(sorted(UNITS)))
def test_a_written_duration_reads_back_as_its_seconds(amount: int, unit: str) -> None:
    """Any whole amount with any unit (or none) is that many units, in either case."""
    assert parse_duration(f"{amount}{unit.upper()}") == pytest.approx(amount * UNITS[unit])


@given(st.text(alphabet="0123456789.-+ abcdhmsx", max_size=8))
def test_anything_read_is_positive_and_anything_else_names_the_field(text: str) -> None:
    """The parser never returns a non-positive number: it returns seconds or names the field."""
    outcome: float | str
    try:
        outcome = parse_duration(text, "--wait")
    except ConfigError as exc:
        outcome = exc.field
    assert outcome == "--wait" or (isinstance(outcome, float) and outcome > 0)


def test_zero_is_refused_unless_allowed() -> None:
    """``0`` is not a duration for a timeout, but is for a wait that may be skipped."""
    with pytest.raises(ConfigError, match="positive duration"):
        parse_duration("0")
    assert parse_duration("0s", "--wait", allow_zero=True) == 0.0
