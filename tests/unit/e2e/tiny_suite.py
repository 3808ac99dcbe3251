"""Run a tiny pytest suite in a subprocess, with the e2e suite's modules importable."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.e2e.settings import ROOT

TINY_SUITE_TIMEOUT_S = 120.0  # a backstop for a hung child, not a timing assertion


def run_tiny_suite(
    tmp_path: Path,
    files: Mapping[str, str],
    *args: str,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Write ``files`` into ``tmp_path`` and run pytest there with ``args``."""
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    child_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src")])
    child_env |= dict(env or {})
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:asyncio", *args],
        cwd=tmp_path,
        env=child_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=TINY_SUITE_TIMEOUT_S,
    )
