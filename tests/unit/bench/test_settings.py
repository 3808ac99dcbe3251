"""The run's settings: durations, load levels, request counts, and typed errors naming flags."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from gptoss_modal import ConfigError
from gptoss_modal.bench.settings import BenchSettings, Level, parse_duration, parse_levels


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("2h", 7200.0), ("500ms", 0.5), (" 2 m ", 120.0)],
)
def test_durations_take_units(text: str, seconds: float) -> None:
    """Durations are seconds by default and accept ms, s, m and h."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5s", "5 minutes", "1d", "abc"])
def test_bad_durations_name_the_flag(text: str) -> None:
    """A duration that is not positive or has an unknown unit is a ConfigError for the flag."""
    with pytest.raises(ConfigError, match="positive duration") as info:
        parse_duration(text, "--wait")
    assert info.value.field == "--wait"


def test_default_levels_are_closed_loop_1_8_32() -> None:
    """Without flags the levels are concurrency 1, 8 and 32, closed loop."""
    assert parse_levels(None, None) == (Level(1), Level(8), Level(32))


def test_rates_make_open_loop_levels_capped_by_concurrency() -> None:
    """--rate lists open-loop levels; --concurrency is then their in-flight cap."""
    assert parse_levels("64", "0.5,2") == (Level(64, 0.5), Level(64, 2.0))
    assert parse_levels(None, "3") == (Level(None, 3.0),)
    assert parse_levels("8,16", "2") == (Level(8, 2.0), Level(16, 2.0))


def test_levels_vary_one_thing_at_a_time() -> None:
    """Several rates and several caps at once are refused."""
    with pytest.raises(ConfigError, match="single cap") as info:
        parse_levels("8,16", "1,2")
    assert info.value.field == "--concurrency"


@pytest.mark.parametrize(
    ("concurrency", "rate", "field"),
    [
        ("0", None, "--concurrency"),
        ("1,x", None, "--concurrency"),
        ("1.5", None, "--concurrency"),
        (None, "0", "--rate"),
        (None, "nan", "--rate"),
        (None, "fast", "--rate"),
    ],
)
def test_bad_levels_name_the_flag(concurrency: str | None, rate: str | None, field: str) -> None:
    """Non-positive or non-numeric levels raise ConfigError naming the flag."""
    with pytest.raises(ConfigError) as info:
        parse_levels(concurrency, rate)
    assert info.value.field == field


def test_level_labels() -> None:
    """Levels are labelled c=N, rate=R/s, or rate=R/s c<=N."""
    assert [lv.label for lv in (Level(8), Level(None, 2.5), Level(64, 0.5))] == [
        "c=8",
        "rate=2.5/s",
        "rate=0.5/s c<=64",
    ]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"requests": 5, "duration_s": 10.0}, "--requests"),
        ({"requests": 0}, "--requests"),
        ({"input_tokens": 0}, "--input-tokens"),
        ({"output_tokens": -1}, "--output-tokens"),
        ({"warmup": -1}, "--warmup"),
        ({"reasoning_effort": "max"}, "--reasoning-effort"),
        ({"levels": ()}, "--concurrency"),
    ],
)
def test_bad_settings_name_the_flag(kwargs: dict[str, Any], field: str) -> None:
    """Impossible settings raise ConfigError naming the flag to fix."""
    with pytest.raises(ConfigError) as info:
        BenchSettings(url="http://x", **kwargs)
    assert info.value.field == field


def test_default_request_count_is_four_per_slot() -> None:
    """Without --requests or --duration a level sends 4 per slot, at least 8."""
    settings = BenchSettings(url="http://x")
    assert [settings.requests_for(Level(c)) for c in (1, 8, 32)] == [8, 32, 128]
    assert BenchSettings(url="http://x", duration_s=5.0).requests_for(Level(8)) is None


def test_the_api_key_never_appears_in_settings_output() -> None:
    """repr and JSON of the settings say a key is set, never what it is."""
    settings = BenchSettings(
        url="http://x", api_key="sk-very-secret", headers={"Modal-Secret": "s3"}
    )
    assert "sk-very-secret" not in repr(settings)
    assert "s3" not in repr(settings)
    assert b"sk-very-secret" not in msgspec.json.encode(settings.to_doc())
    assert settings.to_doc().api_key == "set"
