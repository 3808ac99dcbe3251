"""Running the mock elsewhere: on its own event loop in a thread (for synchronous callers), or
in another process (for benchmarks, so the mock does not share the client's CPU)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from gptoss_modal.testing._config import MockConfig
from gptoss_modal.testing._server import MockVLLM

__all__ = ["MockProcess", "ThreadedMock", "run_mock_in_thread", "spawn_mock_process"]


class ThreadedMock:
    """A mock server running on its own event loop in a daemon thread."""

    def __init__(self, config: MockConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = MockVLLM(config, host=host, port=port)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mock-vllm", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:  # noqa: BLE001  (re-raised in the starting thread)
            self._error = exc
            self.loop.close()
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        """Stop the server and its thread."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@contextlib.contextmanager
def run_mock_in_thread(config: MockConfig | None = None, port: int = 0) -> Iterator[ThreadedMock]:
    """``with run_mock_in_thread(config) as mock: mock.url``: for synchronous callers."""
    mock = ThreadedMock(config or MockConfig(), port=port)
    try:
        yield mock
    finally:
        mock.stop()


@dataclass(frozen=True)
class MockProcess:
    """A mock running in another process: its base URL and process id."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the process used so far (Linux ``/proc``)."""
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def spawn_mock_process(args: Sequence[str] = ()) -> Iterator[MockProcess]:
    """Run ``gptoss-modal mock --port 0 ARGS`` in another process (for benchmarks, so the mock
    does not share the client's core); yields its URL and pid, and stops it afterwards."""
    cmd = [sys.executable, "-m", "gptoss_modal", "mock", "--port", "0", "--quiet", *args]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:  # closes the pipe
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "http://" not in line:
                raise RuntimeError(f"the mock did not start: {line!r} (exit {proc.poll()})")
            yield MockProcess(url=line[line.index("http://") :].split()[0], pid=proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
