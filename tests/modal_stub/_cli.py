"""Run the real ``modal`` CLI from the project's venv against a :class:`ModalStub`: fake
credentials, a private HOME and Modal config, no route to anything beyond loopback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.modal_stub._stub import ModalStub

__all__ = ["CLI_TIMEOUT_S", "MODAL_CLI", "modal_env", "run_modal"]

MODAL_CLI = Path(sys.executable).with_name("modal")  # the venv's own console script
# One command imports the app and talks to the stub for a few seconds on a loaded machine; a
# minute means a hang (a call the stub never answers), and the test fails instead of waiting.
CLI_TIMEOUT_S = 60.0
FAKE_TOKEN_ID = "ak-rehearsal"
FAKE_TOKEN_SECRET = "as-rehearsal"  # a fake credential the stub ignores
# What the child inherits from this process: enough to run Python; nothing Modal- or
# GPTOSS-specific from the developer's shell may leak into a rehearsal.
_INHERITED = ("PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def modal_env(
    stub: ModalStub, home: Path, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a ``modal`` command pointed at ``stub``, with ``home`` as HOME."""
    env = {k: os.environ[k] for k in _INHERITED if k in os.environ}
    env |= {
        "HOME": str(home),
        "MODAL_CONFIG_PATH": str(home / ".modal.toml"),
        "MODAL_SERVER_URL": stub.url,
        "MODAL_TOKEN_ID": FAKE_TOKEN_ID,
        "MODAL_TOKEN_SECRET": FAKE_TOKEN_SECRET,
        "HF_HUB_OFFLINE": "1",  # the Hub preflight reports "unreachable" instead of calling out
        "HF_HOME": str(home / "hf"),
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        "COLUMNS": "400",  # rich wraps at the terminal width: keep each printed line whole
    }
    return env | dict(extra or {})


def run_modal(
    stub: ModalStub,
    args: Sequence[str],
    home: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``modal <args>`` against ``stub`` and return its exit code and output (bounded)."""
    return subprocess.run(
        [str(MODAL_CLI), *args],
        env=modal_env(stub, home, env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
