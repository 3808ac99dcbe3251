"""MockConfig: a bad value is a ConfigError naming its field."""

from __future__ import annotations

import pytest

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.testing.mock_server import MockConfig


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"stream_interval": 0}, "stream_interval"),
        ({"ttft_ms": -1.0}, "ttft_ms"),
        ({"itl_ms": -1.0}, "itl_ms"),
        ({"jitter_ms": -0.5}, "jitter_ms"),
        ({"cold_start_s": -2.0}, "cold_start_s"),
        ({"served_model_names": ()}, "served_model_names"),
        ({"num_speculative_tokens": -1}, "num_speculative_tokens"),
        ({"spec_acceptance_rate": 1.5}, "spec_acceptance_rate"),
        ({"fault": "explode"}, "fault"),
    ],
)
def test_a_bad_value_names_its_field(changes: dict[str, object], field: str) -> None:
    """Each refused value raises ConfigError with that field and the value given."""
    with pytest.raises(ConfigError) as info:
        MockConfig(**changes)  # type: ignore[arg-type]
    assert info.value.field == field
    if field != "fault":
        assert info.value.value == next(iter(changes.values()))


def test_the_defaults_are_allowed() -> None:
    """The defaults and a config using every fault name are accepted."""
    MockConfig()
    MockConfig(fault="error:after=2,code=400", num_speculative_tokens=3)
