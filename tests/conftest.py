"""Shared test settings: hypothesis profiles (fast by default; HYPOTHESIS_PROFILE=thorough), and
a guard that keeps Ctrl-C deliverable to the processes tests start."""

from __future__ import annotations

import os
import signal
import sys

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ("pytester",)  # in-process runs of tiny suites (tests/unit/e2e)

# No deadlines: these 2-core machines are shared, and a timing-dependent test is a flaky test.
settings.register_profile("default", max_examples=100, deadline=None)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    """A child inherits an ignored SIGINT (Modal's container runtime ignores it while user code
    shuts down), and a Ctrl-C test's child then never stops: put Python's handler back after
    any test that left it ignored, and say which test did."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(f"{item.nodeid} left SIGINT ignored; restored", file=sys.__stderr__)
