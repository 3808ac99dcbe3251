"""The budgets TOML (sections per GPU, limits per level, typed errors for anything else) and
the checks of a level's limits against what it measured."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import ConfigError
from gptoss_modal.bench.budgets import (
    BUDGET_KEYS,
    SLO_KEYS,
    BudgetCheck,
    Budgets,
    budget_kind,
    evaluate_budgets,
    load_budgets,
    measured_values,
    parse_budgets,
)
from gptoss_modal.bench.stats import summarize_level
from tests.unit.bench.test_stats import metrics

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "budgets.example.toml"


def test_the_example_file_is_valid_and_has_its_sections() -> None:
    """budgets.example.toml parses, with the mock, B200 and H100 sections."""
    budgets = load_budgets(EXAMPLE)
    assert {"mock", "B200", "H100"} <= set(budgets.sections)
    b200 = budgets.section("B200")
    assert b200.cold_start_s == 1800
    assert b200.source


def test_every_number_in_the_example_says_where_it_comes_from() -> None:
    """Each section of the example has a source, and each limit line a comment."""
    text = EXAMPLE.read_text()
    data = tomllib.loads(text)
    assert all(isinstance(section.get("source"), str) for section in data.values())
    limit_lines = [
        line
        for line in text.splitlines()
        if "=" in line and not line.lstrip().startswith(("#", "source", "["))
    ]
    uncommented = [line for line in limit_lines if "#" not in line]
    # A limit with no comment of its own must sit in a table whose comment above explains it.
    assert len(uncommented) <= len(limit_lines) // 2, uncommented


def test_a_level_merges_all_then_concurrency_then_rate() -> None:
    """Level limits: `all`, overridden by the concurrency table, overridden by the rate table."""
    budgets = parse_budgets(
        {
            "g": {
                "all": {"ttft_p95_ms": 900, "max_error_rate": 0.0},
                "concurrency": {"8": {"ttft_p95_ms": 500}},
                "rate": {"2.5": {"ttft_p95_ms": 300}},
            }
        }
    ).section("g")
    assert budgets.for_level(1) == {"ttft_p95_ms": 900, "max_error_rate": 0.0}
    assert budgets.for_level(8) == {"ttft_p95_ms": 500, "max_error_rate": 0.0}
    assert budgets.for_level(8, 2.5) == {"ttft_p95_ms": 300, "max_error_rate": 0.0}


def test_the_only_section_is_chosen_without_a_name() -> None:
    """With one section, no --gpu is needed."""
    assert parse_budgets({"H200": {}}).section(None) == Budgets(name="H200")


def test_several_sections_need_a_name() -> None:
    """With several sections and no --gpu, the error lists the sections to choose from."""
    file = parse_budgets({"B200": {}, "H100": {}})
    with pytest.raises(ConfigError, match="B200, H100") as info:
        file.section(None)
    assert info.value.field == "--gpu"
    with pytest.raises(ConfigError, match="one of the sections"):
        file.section("A100")


@pytest.mark.parametrize(
    ("data", "field", "allowed"),
    [
        ({"B200": 3}, "B200", "table of budgets"),
        ({"B200": {"levels": {}}}, "B200.levels", "source, cold_start_s, all"),
        ({"B200": {"source": 1}}, "B200.source", "string"),
        ({"B200": {"cold_start_s": -5}}, "B200.cold_start_s", "positive number of seconds"),
        ({"B200": {"all": {"ttft_p42_ms": 1}}}, "B200.all.ttft_p42_ms", "budget key"),
        ({"B200": {"all": {"ttft_p95": 1}}}, "B200.all.ttft_p95", "<metric>_<stat>_ms"),
        ({"B200": {"all": {"ttft_p95_ms": "fast"}}}, "B200.all.ttft_p95_ms", "finite number"),
        ({"B200": {"all": {"ttft_p95_ms": True}}}, "B200.all.ttft_p95_ms", "finite number"),
        ({"B200": {"all": {"ttft_p95_ms": 0}}}, "B200.all.ttft_p95_ms", "positive"),
        ({"B200": {"all": {"max_error_rate": 1.5}}}, "B200.all.max_error_rate", "fraction"),
        (
            {"B200": {"all": {"min_acceptance_length": 0.5}}},
            "B200.all.min_acceptance_length",
            ">= 1",
        ),
        ({"B200": {"all": {"min_requests_per_s": -1}}}, "B200.all.min_requests_per_s", ">= 0"),
        ({"B200": {"all": 5}}, "B200.all", "table of budget limits"),
        ({"B200": {"concurrency": {"eight": {}}}}, "B200.concurrency.eight", "whole number"),
        ({"B200": {"concurrency": {"0": {}}}}, "B200.concurrency.0", "whole number"),
        ({"B200": {"rate": {"fast": {}}}}, "B200.rate.fast", "request rate"),
        ({"B200": {"concurrency": []}}, "B200.concurrency", "table of levels"),
        ({}, "budgets", "at least one section"),
    ],
)
def test_bad_budgets_name_the_field_and_what_is_allowed(
    data: dict[str, Any], field: str, allowed: str
) -> None:
    """Each kind of mistake raises ConfigError with the key's full path and what is allowed."""
    with pytest.raises(ConfigError) as info:
        parse_budgets(data, "budgets.toml")
    assert info.value.field == field
    assert allowed in info.value.allowed


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A budgets path that does not exist is reported as --budgets, not as an OSError."""
    with pytest.raises(ConfigError, match="readable TOML file") as info:
        load_budgets(tmp_path / "nope.toml")
    assert info.value.field == "--budgets"


def test_invalid_toml_is_a_config_error_with_the_position(tmp_path: Path) -> None:
    """A TOML syntax error names the file and says where it is."""
    path = tmp_path / "b.toml"
    path.write_text("[B200\nx = 1\n")
    with pytest.raises(ConfigError, match="line 1"):
        load_budgets(path)


def test_source_strings_are_allowed_in_every_table(tmp_path: Path) -> None:
    """A `source` string may explain any table's numbers and is not a limit."""
    path = tmp_path / "b.toml"
    path.write_text('[g.concurrency.1]\nsource = "measured 2026-01-01"\ntpot_p50_ms = 5\n')
    assert load_budgets(path).section("g").for_level(1) == {"tpot_p50_ms": 5.0}


LIMIT_KEYS = sorted(BUDGET_KEYS | SLO_KEYS)
# Values in (0, 1) suit every key (fractions included) but the acceptance length, which is >= 1.
LIMITS = st.dictionaries(
    st.sampled_from(LIMIT_KEYS), st.floats(min_value=0.001, max_value=0.999), max_size=8
).map(lambda d: {k: v + 1 if k == "min_acceptance_length" else v for k, v in d.items()})


def to_toml(section: str, concurrency: int, limits: dict[str, float]) -> str:
    body = "\n".join(f"{key} = {value!r}" for key, value in limits.items())
    return f"[{section}.concurrency.{concurrency}]\n{body}\n"


@given(LIMITS, st.integers(1, 4096))
def test_any_valid_limits_round_trip_through_toml(limits: dict[str, float], level: int) -> None:
    """Any allowed keys with allowed values, written as TOML, load back as the same limits."""
    data = tomllib.loads(to_toml("gpu", level, limits))
    assert parse_budgets(data).section("gpu").for_level(level) == limits


@given(
    LIMITS,
    st.from_regex(r"[a-z_]{1,20}", fullmatch=True).filter(
        lambda k: k not in BUDGET_KEYS and k not in SLO_KEYS and k != "source"
    ),
)
def test_any_unknown_key_is_refused(limits: dict[str, float], bad: str) -> None:
    """Among valid limits, a single unknown key is refused by name (never silently ignored)."""
    data = tomllib.loads(to_toml("gpu", 1, {**limits, bad: 1.0}))
    with pytest.raises(ConfigError) as info:
        parse_budgets(data)
    assert info.value.field == f"gpu.concurrency.1.{bad}"


# --- checks -----------------------------------------------------------------------------------


def test_budget_keys_name_their_direction() -> None:
    """Latency keys are upper limits, min_ keys lower limits, max_error_rate an upper limit."""
    assert budget_kind("ttft_p95_ms") == ("ttft_p95_ms", "max")
    assert budget_kind("min_output_tokens_per_s") == ("output_tokens_per_s", "min")
    assert budget_kind("max_error_rate") == ("error_rate", "max")
    with pytest.raises(KeyError):
        budget_kind("ttft_p42_ms")


def test_every_budget_key_names_a_measured_value() -> None:
    """Each budget key limits something measured_values reports."""
    values = measured_values(summarize_level([metrics()], {}, duration_s=1.0))
    assert {budget_kind(k)[0] for k in BUDGET_KEYS} <= set(values)


def test_budgets_pass_and_fail_against_measurements() -> None:
    """An upper limit holds at or below it, a lower limit at or above it."""
    measured = {"ttft_p95_ms": 250.0, "output_tokens_per_s": 900.0, "error_rate": 0.0}
    checks = evaluate_budgets(
        {"ttft_p95_ms": 250, "min_output_tokens_per_s": 1000, "max_error_rate": 0.01}, measured
    )
    assert [(c.key, c.passed) for c in checks] == [
        ("ttft_p95_ms", True),
        ("min_output_tokens_per_s", False),
        ("max_error_rate", True),
    ]


def test_a_budget_on_something_unmeasured_fails() -> None:
    """No spec-decode counters, no successes: a budget on them fails rather than passing."""
    (check,) = evaluate_budgets({"min_acceptance_rate": 0.5}, {"acceptance_rate": None})
    assert check == BudgetCheck("min_acceptance_rate", 0.5, None, "min")
    assert not check.passed


def test_per_request_limits_are_not_level_checks() -> None:
    """ttft_ms defines goodput only; it is not reported as a pass/fail budget."""
    assert evaluate_budgets({"ttft_ms": 100}, {}) == []


# ---- cold-start budgets per start mode ------------------------------------------------------


def test_cold_start_budgets_are_read_per_start_mode() -> None:
    """[B200.cold_starts.snapshot] holds seconds per metric and statistic."""
    from gptoss_modal.bench.budgets import evaluate_cold_starts

    data = {
        "B200": {"cold_starts": {"snapshot": {"healthy_p50_s": 90, "first_content_max_s": 200}}}
    }
    section = parse_budgets(data).section("B200")
    assert section.cold_starts == {
        "snapshot": {"healthy_p50_s": 90.0, "first_content_max_s": 200.0}
    }
    summary = {"healthy_s": {"p50": 80.0}, "first_content_s": {"max": 210.0}}
    checks = evaluate_cold_starts(section, "snapshot", summary)
    assert [(c.key, c.passed) for c in checks] == [
        ("healthy_p50_s", True),
        ("first_content_max_s", False),
    ]
    assert evaluate_cold_starts(section, "plain", summary) == []


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ({"lazy": {"healthy_p50_s": 1}}, "B200.cold_starts.lazy"),
        ({"plain": {"healthy_p42_s": 1}}, "B200.cold_starts.plain.healthy_p42_s"),
        ({"plain": {"healthy_p50_s": 0}}, "B200.cold_starts.plain.healthy_p50_s"),
    ],
)
def test_a_bad_cold_start_budget_names_its_path(table: dict[str, Any], field: str) -> None:
    """An unknown start mode or key, or a non-positive limit, is a ConfigError at its path."""
    with pytest.raises(ConfigError) as caught:
        parse_budgets({"B200": {"cold_starts": table}})
    assert caught.value.field == field


def test_a_budget_for_a_level_not_run_is_reported_not_skipped() -> None:
    """Tables for concurrency 4 and rate 2.5 with a run of c=1 and c=8: both named."""
    data = {
        "s": {
            "concurrency": {"1": {"ttft_p50_ms": 1}, "4": {"ttft_p50_ms": 1}},
            "rate": {"2.5": {"ttft_p50_ms": 1}},
        }
    }
    section = parse_budgets(data).section("s")
    assert section.not_measured([(1, None), (8, None)]) == ["concurrency.4", "rate.2.5"]
    assert section.not_measured([(1, None), (4, 2.5)]) == []


def test_max_cost_per_mtok_is_a_budget_on_the_priced_throughput() -> None:
    """max_cost_per_mtok checks dollars per million output tokens; without a price it fails."""
    from gptoss_modal.bench.budgets import evaluate_budgets, measured_values
    from gptoss_modal.bench.stats import summarize_level

    limits = parse_budgets({"s": {"all": {"max_cost_per_mtok": 2.0}}}).section("s").every
    summary = summarize_level([], {}, 1.0)
    object.__setattr__(summary, "completed", 1)
    object.__setattr__(summary, "output_tokens_per_s", 1000.0)
    priced = evaluate_budgets(limits, measured_values(summary, usd_per_s=0.001736))
    assert [c.passed for c in priced] == [True]
    assert priced[0].measured == pytest.approx(1.736)
    unpriced = evaluate_budgets(limits, measured_values(summary))
    assert [(c.measured, c.passed) for c in unpriced] == [(None, False)]


def test_a_tool_call_budget_is_an_upper_limit_on_a_fraction() -> None:
    """``tool_call_invalid_rate`` parses as a fraction and fails above it or when not measured
    (a run with no tool calls), and passes at or below it."""
    section = parse_budgets({"m": {"all": {"tool_call_invalid_rate": 0.05}}}).section("m")
    limits = section.for_level(1)
    assert budget_kind("tool_call_invalid_rate") == ("tool_call_invalid_rate", "max")
    summary = summarize_level([metrics()], {}, 1.0)

    def passed(rate: float | None) -> bool:
        values = measured_values(summary, tool_call_invalid_rate=rate)
        (check,) = evaluate_budgets(limits, values)
        return check.passed

    assert (passed(0.0), passed(0.05), passed(0.051), passed(None)) == (True, True, False, False)
    with pytest.raises(ConfigError, match="fraction"):
        parse_budgets({"m": {"all": {"tool_call_invalid_rate": 1.5}}})
