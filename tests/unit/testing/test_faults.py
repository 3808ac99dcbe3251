"""Fault specs: parsing, typed errors naming what is wrong, and which requests a fault hits."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.testing._faults import FAULTS, Fault, choose_fault, parse_fault


def test_faults_parse_from_their_spec() -> None:
    """``NAME:key=value,...`` gives the fault and its options."""
    assert parse_fault("drop:after=5") == Fault("drop", after=5)
    assert parse_fault("error:rate=0.25,code=400,message=x") == Fault(
        "error", rate=0.25, code=400, message="x"
    )
    assert parse_fault("stall:seconds=0.5").seconds == 0.5


@pytest.mark.parametrize("spec", ["explode", "drop:after", "drop:when=3", "error:rate=2"])
def test_bad_fault_specs_are_refused(spec: str) -> None:
    """Unknown faults, options and out-of-range rates are errors."""
    with pytest.raises(ValueError, match="fault"):
        parse_fault(spec)


@pytest.mark.parametrize(
    ("spec", "field", "value"),
    [
        ("explode", "fault", "explode"),
        ("drop:after", "fault", "after"),
        ("drop:when=3", "fault", "when"),
        ("drop:after=soon", "fault.after", "soon"),
        ("stall:seconds=long", "fault.seconds", "long"),
        ("error:rate=2", "fault.rate", 2.0),
        ("error:code=404", "fault.code", 404),
    ],
)
def test_a_bad_spec_is_a_config_error_naming_its_part(spec: str, field: str, value: object) -> None:
    """Each bad spec raises ConfigError with the part at fault as ``field`` and its value."""
    with pytest.raises(ConfigError) as info:
        parse_fault(spec)
    assert (info.value.field, info.value.value) == (field, value)


def test_an_unknown_fault_names_the_known_ones() -> None:
    """The error for an unknown name lists every fault there is."""
    with pytest.raises(ConfigError) as info:
        parse_fault("explode")
    assert all(name in info.value.allowed for name in FAULTS)


def test_a_request_header_wins_over_the_server_fault() -> None:
    """A request's own ``X-Mock-Fault`` is its fault, whatever the server's."""
    server = Fault("drop")
    assert choose_fault("stall:seconds=1", server, 0, 1) == Fault("stall", seconds=1.0)


def test_a_dead_server_is_not_a_request_fault() -> None:
    """``dead`` server-wide is the engine's state: no request draws it as its own fault."""
    assert choose_fault(None, Fault("dead"), 0, 1) is None


@given(st.integers(), st.integers(min_value=1), st.floats(min_value=0.0, max_value=1.0))
def test_which_requests_a_server_fault_hits_is_repeatable(
    seed: int, number: int, rate: float
) -> None:
    """The same server seed and request number always give the same answer."""
    fault = Fault("drop", rate=rate)
    assert choose_fault(None, fault, seed, number) == choose_fault(None, fault, seed, number)


def test_a_server_fault_hits_about_its_rate_of_requests() -> None:
    """Over many requests a rate of 0.25 hits roughly a quarter; 0 hits none and 1 all."""
    requests = range(1, 2001)
    for rate, low, high in ((0.0, 0, 0), (0.25, 400, 600), (1.0, 2000, 2000)):
        fault = Fault("error", rate=rate)
        hits = sum(choose_fault(None, fault, 7, n) is not None for n in requests)
        assert low <= hits <= high
