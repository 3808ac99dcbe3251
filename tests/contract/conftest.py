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
def vllm_oracle_for() -> Iterator[OracleFor]:
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
