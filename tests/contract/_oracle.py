"""The test-side handle on ``vllm_oracle.py``: vLLM's own parser and models, over a pipe."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

ORACLE_SCRIPT = Path(__file__).with_name("vllm_oracle.py")


SEED_VLLM_VERSION = "0.13.0"  # the version the 0.13.0-only suites (wire format, mock) ask


def vllm_venv_python(version: str | None = None) -> Path | None:
    """The cached venv's interpreter for ``version`` (default: ``$VLLM_VERSION`` or 0.13.0), if
    that venv was completely built. ``$VLLM_VENV`` overrides the path for ``$VLLM_VERSION``."""
    wanted = version or os.environ.get("VLLM_VERSION") or SEED_VLLM_VERSION
    venv = os.environ.get("VLLM_VENV")
    if not venv or wanted != os.environ.get("VLLM_VERSION", SEED_VLLM_VERSION):
        cache = os.environ.get("GPTOSS_CACHE_DIR") or str(
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gptoss-modal"
        )
        venv = str(Path(cache) / f"vllm-{wanted}")
    python = Path(venv) / "bin" / "python"
    if (Path(venv) / ".complete").exists() and python.exists():
        return python
    return None


class VllmOracle:
    """One vLLM interpreter answering JSON questions; thread-safe, one question at a time."""

    def __init__(self, python: Path) -> None:
        env = {**os.environ, "VLLM_LOGGING_LEVEL": "WARNING", "HF_HUB_OFFLINE": "1"}
        # vLLM's own log goes to a file, shown when the oracle dies.
        self._log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - lives as long as the process
        self._proc = subprocess.Popen(
            [str(python), str(ORACLE_SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=env,
        )
        self._lock = threading.Lock()
        ready = self._read()
        self.version: str = ready["ready"]

    def _read(self) -> dict[str, Any]:
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line:
            self._log.seek(0)
            tail = "".join(self._log.readlines()[-20:])
            raise RuntimeError(f"vLLM oracle exited with {self._proc.wait()}:\n{tail}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """Ask one question; returns the oracle's answer dict (``ok`` says if vLLM accepted)."""
        with self._lock:
            assert self._proc.stdin is not None
            self._proc.stdin.write(json.dumps({"op": op, **kwargs}) + "\n")
            self._proc.stdin.flush()
            return self._read()

    def parse_serve(self, argv: list[str]) -> dict[str, Any]:
        """vLLM's verdict on a whole ``vllm serve`` argv."""
        return self.call("parse_serve", argv=argv)

    def roundtrip(self, cls: str, data: str | bytes) -> dict[str, Any]:
        """Validate JSON with a vLLM protocol class and re-serialise it (exclude_unset)."""
        text = data.decode() if isinstance(data, bytes) else data
        return self.call("validate", cls=cls, json=text)

    def close(self) -> None:
        """End the oracle and close every file it had open (pipes and its log)."""
        # Killed, not asked to exit: it holds no state, and vLLM's interpreter spends 2-3 s
        # of CPU (up to 6 s of wall on a busy machine) shutting down.
        self._proc.kill()
        self._proc.wait()
        if self._proc.stdin:
            self._proc.stdin.close()
        if self._proc.stdout:
            self._proc.stdout.close()
        self._log.close()
