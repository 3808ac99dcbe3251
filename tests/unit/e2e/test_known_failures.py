"""Which deployments lose a stream's last batch, and the contract suite's xfails for them."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import openai  # noqa: F401 - preloaded, see run_contract_checks
import pytest

import tests.contract.conftest_server  # noqa: F401 - preloaded, see run_contract_checks
from gptoss_modal.testing.mock_server import spawn_mock_process
from tests.e2e import known_failures
from tests.e2e.known_failures import CONTRACT_CHECKS, LOST_LAST_BATCH_ENV, loses_last_batch
from tests.e2e.settings import ROOT

KEY = "sk-known-failures"
SEED_LIKE = ("--vllm", "0.13.0", "--stream-interval", "20", "--num-speculative-tokens", "7")
# The mock batches a stream's outputs by token count (stream interval, drafts), never by time,
# so which batch is lost is the same unpaced; paced (200 ms + 20 ms a token) each run waited
# ~2 s per check.
UNPACED = ("--ttft-ms", "0", "--itl-ms", "0")


@pytest.mark.parametrize(
    ("version", "interval", "speculative", "expected"),
    [
        ("0.13.0", 20, True, True),  # the seed / balanced profile
        ("0.13.0", 20, False, True),  # throughput profile: batches of 20
        ("0.13.0", 1, True, True),  # latency profile: drafts make multi-token steps
        ("0.13.0", 1, False, False),  # one token per output: nothing to drop
        ("0.13.0", None, False, False),
        ("0.33.0", 20, True, False),  # the harmony parser fix
        ("0.34.1+cu130", 20, True, False),
    ],
)
def test_the_decision_follows_version_interval_and_drafts(
    version: str, interval: int | None, speculative: bool, expected: bool
) -> None:
    """Affected: a vLLM before 0.33.0 that streams multi-token outputs."""
    assert loses_last_batch(version, interval, speculative) is expected


@contextmanager
def mock_url(*args: str) -> Iterator[str]:
    """A mock vLLM in its own process, serving (unpaced) with ``args``."""
    with spawn_mock_process(["--api-key", KEY, *UNPACED, *args]) as mock:
        yield mock.url


def run_contract_checks(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    lost: str,
    plugin: Sequence[object],
) -> pytest.RunResult:
    """The contract checks named in CONTRACT_CHECKS, against ``url``, as the e2e test runs them
    (there in a subprocess; here a fresh pytest session in this process, from the repository
    root with its configuration, and the environment the subprocess would get).

    pytester forgets every module a run imported, so each run would import the checks'
    dependencies again (openai alone takes ~0.7 s of CPU): this module imports them once."""
    for name in [name for name in os.environ if name.startswith(("GPTOSS_", "PYTEST_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("GPTOSS_BASE_URL", url)
    monkeypatch.setenv("GPTOSS_API_KEY", KEY)
    monkeypatch.setenv("GPTOSS_SERVED_MODEL", "llm")
    monkeypatch.setenv(LOST_LAST_BATCH_ENV, lost)
    monkeypatch.chdir(ROOT)
    tests = [failure.test for failure in CONTRACT_CHECKS]
    return pytester.runpytest_inprocess(
        *tests, "-q", "-rfxX", "-p", "no:cacheprovider", f"--rootdir={ROOT}", plugins=list(plugin)
    )


# The e2e run's `-p tests.e2e.known_failures`, as the module itself (this process imported it
# already, so `-p` would warn that pytest cannot rewrite its asserts).
PLUGIN = (known_failures,)


def test_an_affected_deployment_fails_the_streaming_contract_checks(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a mock serving as 0.13.0 with the balanced profile's batching, the checks fail
    as they would against the seed deployment (what the xfails stand for)."""
    with mock_url(*SEED_LIKE) as url:
        run = run_contract_checks(pytester, monkeypatch, url, "0", ())
    assert run.ret == 1, run.stdout.str() + run.stderr.str()
    assert f"FAILED {CONTRACT_CHECKS[1].test}" in run.stdout.str()


def test_an_affected_deployment_passes_with_the_known_failures_marked(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the plugin and the decision on, the same run passes: the strict check is XFAIL,
    and the reason names the upstream issues."""
    with mock_url(*SEED_LIKE) as url:
        run = run_contract_checks(pytester, monkeypatch, url, "1", PLUGIN)
    assert run.ret == 0, run.stdout.str() + run.stderr.str()
    assert "xfailed" in run.stdout.str()
    assert "vllm-project/vllm#31501" in run.stdout.str()


def test_an_unaffected_deployment_runs_the_checks_normally(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One token per output: the decision is off, nothing is marked, both checks pass."""
    assert not loses_last_batch("0.13.0", 1, False)
    with mock_url("--stream-interval", "1") as url:
        run = run_contract_checks(pytester, monkeypatch, url, "0", PLUGIN)
    assert run.ret == 0, run.stdout.str() + run.stderr.str()
    assert "2 passed" in run.stdout.str()
    assert "xfail" not in run.stdout.str()
