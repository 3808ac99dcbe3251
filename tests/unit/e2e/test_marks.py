"""The e2e suite's per-test marks: a timeout that covers a cold start, Modal's notices shown."""

from __future__ import annotations

import pytest

from gptoss_modal.bench.budgets import load_budgets
from tests.e2e.marks import CONTRACT_TIMEOUT_S, HEALTH_MARGIN_S, e2e_marks, per_test_timeout_s
from tests.e2e.settings import DEFAULT_BUDGETS, E2ESettings
from tests.unit.e2e.tiny_suite import run_tiny_suite

# The project's 300 s timeout scaled down to a told delay, and a session fixture that takes
# 2.5 times as long, as the deployment's takes longer than 300 s (pytest-timeout's timer takes
# fractions of a second).
PROJECT_TIMEOUT_S = 0.5
SLOW_SETUP = f"""
import time
import pytest

@pytest.fixture(scope="session")
def deployed():
    time.sleep({2.5 * PROJECT_TIMEOUT_S})
    return "url"

def test_uses_the_deployment(deployed):
    assert deployed == "url"
"""

APPLY_E2E_MARKS = """
from tests.e2e.marks import e2e_marks

def pytest_collection_modifyitems(items):
    for item in items:
        for mark in e2e_marks(1800):
            item.add_marker(mark)
"""

# Modal's own path for a server notice (ClientHello, AppPublish, RPC trailers).
SERVER_NOTICE = """
from modal._traceback import print_server_warning

def test_a_server_notice_during_the_run():
    print_server_warning("Modal will restart this worker soon")
"""


def test_a_slow_setup_errors_under_the_project_timeout(pytester: pytest.Pytester) -> None:
    """Without the e2e marks, pytest-timeout counts fixture setup: a slow setup errors (the
    first-run failure, with the project's 300 s scaled down)."""
    run = run_tiny_suite(
        pytester, {"test_slow.py": SLOW_SETUP}, "-o", f"timeout={PROJECT_TIMEOUT_S}"
    )
    assert run.ret != 0
    assert "Timeout" in run.stdout.str() + run.stderr.str()


def test_the_e2e_timeout_lets_a_slow_setup_finish(pytester: pytest.Pytester) -> None:
    """With the e2e marks the same slow setup passes under the same project timeout."""
    files = {"test_slow.py": SLOW_SETUP, "conftest.py": APPLY_E2E_MARKS}
    run = run_tiny_suite(pytester, files, "-o", f"timeout={PROJECT_TIMEOUT_S}")
    assert run.ret == 0, run.stdout.str() + run.stderr.str()
    assert "1 passed" in run.stdout.str()


def test_a_modal_server_warning_is_an_error_without_the_e2e_marks(
    pytester: pytest.Pytester,
) -> None:
    """Under filterwarnings=error a real ServerWarning from Modal fails the test."""
    run = run_tiny_suite(pytester, {"test_notice.py": SERVER_NOTICE}, "-W", "error")
    assert run.ret != 0
    assert "ServerWarning" in run.stdout.str()


def test_a_modal_server_warning_is_shown_not_raised_in_the_e2e_suite(
    pytester: pytest.Pytester,
) -> None:
    """With the e2e marks the same ServerWarning is reported and the test passes."""
    files = {"test_notice.py": SERVER_NOTICE, "conftest.py": APPLY_E2E_MARKS}
    run = run_tiny_suite(pytester, files, "-W", "error")
    assert run.ret == 0, run.stdout.str() + run.stderr.str()
    assert "ServerWarning: Modal will restart this worker soon" in run.stdout.str()


def test_the_per_test_timeout_covers_the_longest_setup_and_call() -> None:
    """The timeout is longer than a wait for the start-up timeout plus margin, and than the
    contract run, so only a real hang trips it."""
    startup_s = E2ESettings.from_env({}).startup_timeout_s({})
    timeout_s = per_test_timeout_s(startup_s)
    assert timeout_s > startup_s + HEALTH_MARGIN_S
    assert timeout_s > CONTRACT_TIMEOUT_S
    (mark, _) = e2e_marks(startup_s)
    assert mark.args == (timeout_s,)


@pytest.mark.parametrize("gpu", ["B200", "H200", "H100"])
def test_start_budgets_can_fail_before_the_startup_timeout(gpu: str) -> None:
    """Each GPU's warm start budget is below its cold one, and the cold one is well below the
    app's start-up timeout (at most 3/4), so a slow start fails its budget, not Modal's wait."""
    section = load_budgets(DEFAULT_BUDGETS).section(gpu)
    startup_s = E2ESettings.from_env({}).startup_timeout_s({})
    assert section.cold_start_s is not None
    assert section.warm_start_s is not None
    assert section.warm_start_s < section.cold_start_s <= 0.75 * startup_s


@pytest.mark.parametrize("gpu", ["B200", "H200", "H100"])
def test_each_percentile_budget_has_enough_requests(gpu: str) -> None:
    """A pNN budget needs at least 100 / (100 - NN) measured requests, or pNN is the maximum."""
    requests = E2ESettings.from_env({}).warm_requests
    for key in load_budgets(DEFAULT_BUDGETS).section(gpu).for_level(1):
        parts = key.split("_")
        stat = next((p for p in parts if p.startswith("p") and p[1:].isdigit()), None)
        if stat is not None:
            assert requests >= 100 / (100 - int(stat[1:])), f"{key} with {requests} requests"
