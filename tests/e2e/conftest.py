"""The e2e suite: the real app on Modal, run ephemerally under a test name, then stopped.

Without Modal credentials every test here is skipped with one reason that says what is missing
(``make e2e`` fails before pytest with the same message, see ``preflight.py``). With them, the
session fixture ``deployed``:

1. creates the test's API-key Secret with a fresh random key (never printed),
2. imports the app with the test's deploy settings (its own name and Secret, at most one
   container, strict preflight) and runs it ephemerally (``app.run()``),
3. waits for ``/health`` from zero containers (stopping early on a crash loop), records how
   long that took and whether the cache Volumes were already filled (warm) or not (cold),

and at the end stops the app and deletes the Secret. A Ctrl-C during the wait ends the session.
Every e2e test carries the timeout and warnings marks of ``marks.py``. Results go to
``build/e2e/results.json`` (or ``GPTOSS_E2E_RESULTS``) and are summarised in the terminal.
"""

from __future__ import annotations

import asyncio
import importlib
import secrets
import sys
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import pytest

from gptoss_modal.bench.budgets import Budgets, load_budgets
from tests.e2e.credentials import missing_modal_credentials
from tests.e2e.known_failures import loses_last_batch
from tests.e2e.marks import HEALTH_MARGIN_S, e2e_marks
from tests.e2e.results import E2EResults
from tests.e2e.settings import E2ESettings
from tests.e2e.startup import (
    caches_are_warm,
    ending_the_session_on_ctrl_c,
    served_vllm_version,
    wait_for_start,
)

E2E_DIR = Path(__file__).parent
RESULTS_KEY = pytest.StashKey[E2EResults]()


def _is_e2e(item: pytest.Item) -> bool:
    return E2E_DIR in item.path.parents


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark everything under tests/e2e as e2e, with the suite's timeout and warnings marks;
    without credentials, skip it with one reason."""
    reason = missing_modal_credentials()
    marks = e2e_marks(E2ESettings.from_env().startup_timeout_s())
    for item in items:
        if not _is_e2e(item):
            continue
        item.add_marker(pytest.mark.e2e)
        for mark in marks:
            item.add_marker(mark)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Record each e2e test's outcome for the results file."""
    report = yield
    results = item.config.stash.get(RESULTS_KEY, None)
    decisive = report.when == "call" or (report.when == "setup" and not report.passed)
    if results is not None and _is_e2e(item) and decisive:
        results.outcome(item.nodeid, report.outcome)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Write the results file when an e2e test ran."""
    results = session.config.stash.get(RESULTS_KEY, None)
    if results is not None and results.ran:
        results.write(E2ESettings.from_env().results_path)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Summarise the measurements, the budget verdicts and where the JSON went."""
    results = config.stash.get(RESULTS_KEY, None)
    if results is None or not results.ran:
        return
    terminalreporter.section("gptoss-modal e2e results")
    for line in results.summary_lines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"  written to {E2ESettings.from_env().results_path}")


# ---- fixtures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deployed:
    """The running app under test. ``api_key`` is kept out of repr so it never shows in output."""

    url: str
    api_key: str = field(repr=False)
    served_model_names: tuple[str, ...]
    model: str
    gpu: str
    start_s: float
    warm_caches: bool  # the cache Volumes held files before the start: the warm-start budget
    vllm_version: str  # what the deployment's /version says
    loses_last_batch: bool  # the known 0.13.0 streaming failure applies (known_failures.py)


@pytest.fixture(scope="session")
def e2e_settings() -> E2ESettings:
    """The suite's settings from GPTOSS_E2E_* variables."""
    return E2ESettings.from_env()


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest, e2e_settings: E2ESettings) -> E2EResults:
    """The run's results, kept on the config so the summary hooks find them."""
    found = E2EResults(app_name=e2e_settings.app_name, gpu=e2e_settings.gpu)
    request.config.stash[RESULTS_KEY] = found
    return found


@pytest.fixture(scope="session")
def budgets(e2e_settings: E2ESettings, results: E2EResults) -> Budgets:
    """The budgets section for the GPU type under test, in `gptoss-modal bench`'s format."""
    section = load_budgets(e2e_settings.budgets_path).section(e2e_settings.gpu_type)
    results.budget_source = section.source
    return section


@pytest.fixture(scope="session")
def deployed(e2e_settings: E2ESettings, results: E2EResults) -> Iterator[Deployed]:
    """Run the app on Modal under the test name, wait for it from zero, stop it afterwards."""
    import modal

    from gptoss_modal.deploy import API_KEY_ENV

    api_key = secrets.token_urlsafe(32)
    results.hide(api_key)
    modal.Secret.objects.delete(e2e_settings.secret_name, allow_missing=True)
    modal.Secret.objects.create(e2e_settings.secret_name, {API_KEY_ENV: api_key})
    try:
        with pytest.MonkeyPatch.context() as env:
            for name, value in e2e_settings.app_env().items():
                env.setenv(name, value)
            env.delitem(sys.modules, "gptoss_modal.app", raising=False)
            app_module = importlib.import_module("gptoss_modal.app")
            record_deployment(app_module, results)
            warm = caches_are_warm(list(app_module.VOLUMES.values()))
            with (
                modal.enable_output(),  # streams the image build and the container's logs
                ending_the_session_on_ctrl_c(app_module.app.run()),
            ):
                yield start(app_module, api_key, warm, results)
    finally:
        modal.Secret.objects.delete(e2e_settings.secret_name, allow_missing=True)


def record_deployment(app_module: ModuleType, results: E2EResults) -> None:
    """Put what is deployed (config, argv) into the results."""
    config = app_module.CONFIG
    results.deployment = {
        "model": config.model,
        "revision": config.revision,
        "gpu": config.gpu,
        "config": config.to_dict(),
        "argv": app_module.DEPLOYMENT.argv,
    }


def start(app_module: ModuleType, api_key: str, warm: bool, results: E2EResults) -> Deployed:
    """Inside ``app.run()``: wait for the server from zero containers and describe it."""
    config = app_module.CONFIG
    url = app_module.serve.get_web_url()
    assert url, "the serve function has no web URL"
    started = time.perf_counter()
    asyncio.run(
        wait_for_start(
            url,
            api_key=api_key,
            timeout_s=app_module.SETTINGS.startup_timeout_s + HEALTH_MARGIN_S,
            max_server_errors=app_module.STARTUP_FAILURES_IN_A_ROW,
        )
    )
    start_s = time.perf_counter() - started
    results.measurements["warm_start_s" if warm else "cold_start_s"] = start_s
    version = asyncio.run(served_vllm_version(url))
    results.deployment["vllm_version"] = version
    return Deployed(
        url=url,
        api_key=api_key,
        served_model_names=tuple(config.served_model_names or ()),
        model=config.model,
        gpu=config.gpu,
        start_s=start_s,
        warm_caches=warm,
        vllm_version=version,
        loses_last_batch=loses_last_batch(version, config.stream_interval, config.speculative),
    )
