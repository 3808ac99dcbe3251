"""Shared test settings: hypothesis profiles (fast by default; HYPOTHESIS_PROFILE=thorough),
Ctrl-C deliverable to the processes tests start, and the collected test tree kept out of the
garbage collector's walks."""

from __future__ import annotations

import gc
import os
import signal

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


# A shell without job control starts a background command (`make test &`, nohup, some CI
# runners) with SIGINT ignored, Python keeps it so, and every process a test starts inherits it:
# the Ctrl-C tests' children then never see their SIGINT (they hung, or finished as if never
# interrupted). Give this process, and so its children, Python's own handler back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what collection built (the imported modules, ~2000 items) out of the garbage
    collector's reach: each full collection walked all of it again (half the collector's time,
    ~4 of 9 CPU-s over the unit tests in one process). It all lives to the end of the run, and
    what the tests make is collected (and its unraisable errors reported) as before. Only the
    outer session's: a pytester session run inside a test would freeze that test's objects."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
