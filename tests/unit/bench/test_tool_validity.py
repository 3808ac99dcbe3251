"""The tool-call validity classifier: each category, a valid call never flagged, and the rate's
sampling error."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal.bench.agentic import TOOLS
from gptoss_modal.bench.tool_validity import (
    CUT,
    HARMONY_LEAK,
    NOT_JSON,
    SCHEMA,
    UNKNOWN_TOOL,
    ToolSchemas,
    ValidityTally,
    check_call,
    has_harmony_markup,
    wilson_interval,
)

SCHEMAS = ToolSchemas(TOOLS)
GOOD = json.dumps({"city": "Paris", "unit": "celsius"})


@pytest.mark.parametrize(
    ("name", "arguments", "finish", "content", "problem"),
    [
        ("get_weather<|channel|>commentary", GOOD, None, "", HARMONY_LEAK),
        ("get_weather", GOOD, None, "<|constrain|>json", HARMONY_LEAK),
        ("get_weather", '{"city": "to=functions.get_weather"}', None, "", HARMONY_LEAK),
        ("get_wether", GOOD, None, "", UNKNOWN_TOOL),
        ("get_weather", '{"city": "Par', None, "", NOT_JSON),
        ("get_weather", '["Paris"]', None, "", NOT_JSON),
        ("get_weather", '{"unit": "celsius"}', None, "", SCHEMA),
        ("get_weather", '{"city": "Paris", "unit": "kelvin"}', None, "", SCHEMA),
        ("get_weather", GOOD, "length", "", CUT),
    ],
)
def test_each_kind_of_broken_call_is_named(
    name: str, arguments: str, finish: str | None, content: str, problem: str
) -> None:
    """Every category of the module docstring is found, and makes the call invalid."""
    verdict = check_call(name, arguments, SCHEMAS, finish_reason=finish, content=content)
    assert problem in verdict.problems
    assert not verdict.valid


def _fitting(tool: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Arguments that satisfy a tool's schema: its required keys, some optional ones."""
    params = tool["function"]["parameters"]
    values: dict[str, st.SearchStrategy[Any]] = {}
    for key, prop in params["properties"].items():
        if "enum" in prop:
            values[key] = st.sampled_from(prop["enum"])
        elif prop["type"] == "integer":
            values[key] = st.integers(prop.get("minimum", -(10**6)), prop.get("maximum", 10**6))
        elif prop["type"] == "number":
            values[key] = st.floats(allow_nan=False, allow_infinity=False)
        else:  # text without harmony markup, as a real argument is
            values[key] = st.text(max_size=40).filter(lambda s: not has_harmony_markup(s))
    required = {k: v for k, v in values.items() if k in params["required"]}
    optional = {k: v for k, v in values.items() if k not in params["required"]}
    return st.fixed_dictionaries(required, optional=optional)


@st.composite
def valid_calls(draw: st.DrawFn) -> tuple[str, str]:
    tool = draw(st.sampled_from(TOOLS))
    return tool["function"]["name"], json.dumps(draw(_fitting(tool)))


@given(valid_calls())
def test_a_valid_call_is_never_flagged(call: tuple[str, str]) -> None:
    """Any call of an offered tool whose arguments fit its schema passes every check."""
    name, arguments = call
    assert check_call(name, arguments, SCHEMAS, finish_reason="tool_calls").valid


@given(valid_calls(), st.sampled_from(["<|channel|>", "<|constrain|>", "<|call|>", "<|end|>"]))
def test_markup_in_a_valid_calls_name_is_always_flagged(call: tuple[str, str], token: str) -> None:
    """The partner property: the same valid call with a harmony token in its name is invalid
    (a classifier that passes everything fails here)."""
    name, arguments = call
    verdict = check_call(f"{name}{token}", arguments, SCHEMAS)
    assert HARMONY_LEAK in verdict.problems
    assert UNKNOWN_TOOL in verdict.problems


@given(st.integers(0, 400), st.integers(1, 400))
def test_the_wilson_interval_holds_the_observed_rate(invalid: int, total: int) -> None:
    """The 95% interval lies within [0, 1] and contains the observed proportion."""
    invalid = min(invalid, total)
    low, high = wilson_interval(invalid, total)
    assert 0.0 <= low <= invalid / total <= high <= 1.0


def test_the_tally_counts_calls_and_lost_attempts() -> None:
    """Invalid calls and lost attempts count once each, with the standard error of the rate."""
    tally = ValidityTally()
    good = check_call("calculator", '{"expression": "1+1"}', SCHEMAS)
    bad = check_call("calculator", "{", SCHEMAS)
    tally.extend([good, good, bad], lost=["upstream_500"])
    assert (tally.calls, tally.invalid) == (4, 2)
    assert tally.rate == 0.5
    assert tally.standard_error == pytest.approx(math.sqrt(0.25 / 4))
    assert tally.problems == {NOT_JSON: 1, "upstream_500": 1}
    assert ValidityTally().rate is None
    assert ValidityTally().interval is None
