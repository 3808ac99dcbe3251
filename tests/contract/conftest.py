"""Contract fixtures: vLLM's own code (through the oracle) and the server under test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.contract._oracle import VllmOracle, vllm_venv_python

MISSING_VLLM = (
    "the cached vLLM venv is missing: run `make vllm-venv` (builds vllm==0.13.0 into "
    "~/.cache/gptoss-modal, ~8 min once)"
)


@pytest.fixture(scope="session")
def vllm() -> Iterator[VllmOracle]:
    """vLLM 0.13.0's parser and protocol classes; skipped without the venv unless required."""
    python = vllm_venv_python()
    if python is None:
        if os.environ.get("GPTOSS_REQUIRE_VLLM") == "1":
            pytest.fail(MISSING_VLLM)
        pytest.skip(MISSING_VLLM)
    oracle = VllmOracle(python)
    yield oracle
    oracle.close()


# --- issue 3: the server under test (in-process mock, or GPTOSS_BASE_URL) -------------------
from tests.contract.conftest_server import (  # noqa: E402, F401 - fixtures, used by name
    _skip_mock_only_against_real_server,
    start_mock,
    target,
)
