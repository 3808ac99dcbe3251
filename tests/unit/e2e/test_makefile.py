"""`make e2e` streams what the suite prints (image build, vLLM's logs, the health wait)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.e2e.settings import ROOT
from tests.unit.e2e.tiny_suite import run_tiny_suite

MAKE = shutil.which("make") or "make"  # an absolute path: the second test trims PATH
INSTALLED_STAMP = ".venv/.installed"  # the Makefile's $(VENV)/.installed, VENV's default

CHATTY = """
def test_a_passing_test_that_logs():
    print("vllm: Loading weights took 41.2 seconds")
"""


def e2e_pytest_options() -> list[str]:
    """The options `make e2e` gives pytest, read from `make -n e2e`."""
    dry = subprocess.run(
        [MAKE, "-s", "-n", "e2e"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    line = next(line for line in dry.stdout.splitlines() if " -m pytest tests/e2e" in line)
    return shlex.split(re.sub(r"^.* -m pytest tests/e2e", "", line))


def test_make_e2e_shows_output_of_passing_tests(pytester: pytest.Pytester) -> None:
    """With `make e2e`'s options a passing test's output is on the terminal, where pytest's
    default capture would hide it until a failure."""
    # In this process, pytester reads what reached sys.stdout: what the inner session's
    # capture let through to the terminal.
    options = [o for o in e2e_pytest_options() if o not in ("-m", "e2e")]
    run = run_tiny_suite(pytester, {"test_chatty.py": CHATTY}, *options)
    assert run.ret == 0, run.stdout.str() + run.stderr.str()
    assert "Loading weights took 41.2 seconds" in run.stdout.str()


def test_make_e2e_without_credentials_exits_non_zero_with_one_message(tmp_path: Path) -> None:
    """`make e2e` with no Modal token stops at the preflight: non-zero, the reason once."""
    env = {"MODAL_CONFIG_PATH": str(tmp_path / "none.toml"), "PATH": "/usr/bin:/bin"}
    # `-o`: never rebuild the venv from here (with pyproject.toml newer than the stamp, make
    # would, with this PATH's python3, under the running tests).
    run = subprocess.run(
        [MAKE, "-s", "-o", INSTALLED_STAMP, "e2e"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode != 0
    assert run.stderr.count("e2e: cannot run: Modal credentials are missing") == 1
