"""Contract fixtures: each vLLM version's own code (through its oracle), the server under test."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from gptoss_modal.serve.options import VLLM_VERSIONS
from tests.contract._oracle import SEED_VLLM_VERSION, VllmOracle, vllm_venv_python


def _missing(version: str) -> str:
    return (
        f"the cached vLLM {version} venv is missing: run `make vllm-venv` (builds each "
        "supported vLLM into ~/.cache/gptoss-modal from its hashed lock, ~8 min each, once)"
    )


MISSING_VLLM = _missing(SEED_VLLM_VERSION)  # what the 0.13.0-only suites skip with

OracleFor = Callable[[str], VllmOracle]


@pytest.fixture(scope="session")
def vllm_oracle_for(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OracleFor]:
    """Start (on first use) and keep one long-lived oracle per vLLM version for the session;
    a missing venv skips the test, or fails it under GPTOSS_REQUIRE_VLLM=1."""
    oracles: dict[str, VllmOracle] = {}

    def oracle_for(version: str) -> VllmOracle:
        if version not in oracles:
            python = vllm_venv_python(version)
            if python is None:
                if os.environ.get("GPTOSS_REQUIRE_VLLM") == "1":
                    pytest.fail(_missing(version))
                pytest.skip(_missing(version))
            _claim_oracle_start(request.config, tmp_path_factory, version)
            oracles[version] = VllmOracle(python)
        return oracles[version]

    yield oracle_for
    for oracle in oracles.values():
        oracle.close()


@pytest.fixture(scope="session")
def vllm(vllm_oracle_for: OracleFor) -> VllmOracle:
    """vLLM 0.13.0's parser and protocol classes; skipped without the venv unless required."""
    return vllm_oracle_for(SEED_VLLM_VERSION)


@pytest.fixture(scope="session", params=VLLM_VERSIONS)
def vllm_each(request: pytest.FixtureRequest, vllm_oracle_for: OracleFor) -> VllmOracle:
    """Each supported vLLM version's oracle in turn (tests using it run once per version)."""
    version: str = request.param
    return vllm_oracle_for(version)


# --- issue 3: the server under test (in-process mock, or GPTOSS_BASE_URL) -------------------
from tests.contract.conftest_server import (  # noqa: E402, F401 - fixtures, used by name
    _skip_mock_only_against_real_server,
    start_mock,
    target,
)

# --- parallel runs: each vLLM version's oracle starts in one worker only ---------------------
_ORACLE_FIXTURES = frozenset({"vllm", "vllm_each", "vllm_oracle_for"})


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads the marks into node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put every test that asks a vLLM oracle in that version's xdist group, so under
    ``pytest -n N --dist loadgroup`` (``make test``) each oracle (15-30 s of CPU to import vLLM)
    starts once per run, not once per worker."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if not names & _ORACLE_FIXTURES:
            continue
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        version = next((p for p in params if p in VLLM_VERSIONS), None)
        if version is None:  # `vllm` is 0.13.0's; the direct users ask for the default
            version = SEED_VLLM_VERSION if "vllm" in names else VLLM_VERSIONS[-1]
        item.add_marker(pytest.mark.xdist_group(f"vllm-{version}"))


def _claim_oracle_start(
    config: pytest.Config, tmp_path_factory: pytest.TempPathFactory, version: str
) -> None:
    """Under ``--dist loadgroup``, fail if another worker of this run already started this
    version's oracle: the grouping above has silently stopped working (as it did with pytest
    9.2, pytest-xdist#1386), and each extra start costs ~12 s of CPU."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker is None or not config.getvalue("loadgroup"):
        return
    run_root = tmp_path_factory.getbasetemp().parent  # shared by this run's workers
    claim = run_root / f"vllm-oracle-{version}.started"
    try:
        with claim.open("x") as file:
            file.write(worker)
    except FileExistsError:
        pytest.fail(
            f"vLLM {version}'s oracle already started in worker {claim.read_text()}, now in "
            f"{worker}: --dist loadgroup no longer groups the oracle's tests (check the "
            "xdist_group marks reach the node ids; pytest-xdist#1386)"
        )
