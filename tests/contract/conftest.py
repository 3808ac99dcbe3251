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
