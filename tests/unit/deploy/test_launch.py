"""Stopping vLLM stops its whole process group: the engine core and the workers go with it.

A real child stands in for vLLM: a small Python program that starts a grandchild (as vLLM
starts its engine core and tensor-parallel workers, which hold the GPUs), writes the
grandchild's pid to a file, and then listens, exits or hangs.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_modal._exceptions import VllmStartupError
from gptoss_modal.deploy import launch
from gptoss_modal.deploy.launch import RunningServer, start_server

WAIT_S = 60.0  # bounds a wait for a process to go; no assertion is about time
POLL_S = 0.02


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _fake_vllm(pid_file: Path, then: str) -> list[str]:
    """A parent that starts a sleeping grandchild, records its pid, then runs ``then``."""
    code = (
        "import socket, subprocess, sys, time\n"
        "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(worker.pid))\n"
        f"{then}\n"
    )
    return [sys.executable, "-c", code]


def _listen(port: int, *, exit_after_accept: bool = False) -> str:
    tail = "s.accept(); sys.exit(7)" if exit_after_accept else "time.sleep(600)"
    return f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); {tail}"


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (nothing runs; init may not have reaped it yet)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    return _gone(pid)


def _wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + WAIT_S
    while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(POLL_S)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[Path]:
    """Where the fake vLLM writes its grandchild's pid; that grandchild is killed afterwards."""
    pid_file = tmp_path / "worker.pid"
    yield pid_file
    if pid_file.exists() and pid_file.read_text():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.fixture
def servers() -> Iterator[list[RunningServer]]:
    """Servers a test started; their groups are killed afterwards if still running."""
    started: list[RunningServer] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            server.stop(grace_s=0)


def test_a_start_up_timeout_kills_the_grandchildren(
    worker: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the port stays closed past the timeout, the worker vLLM started is killed too."""

    def port_closed_once_the_worker_runs(host: str, port: int) -> bool:
        _wait_for_file(worker)  # so the timeout comes after the worker exists
        return False

    monkeypatch.setattr(launch, "_port_open", port_closed_once_the_worker_runs)
    with pytest.raises(VllmStartupError, match="it was killed"):
        start_server(
            _fake_vllm(worker, "time.sleep(600)"),
            port=_free_port(),
            startup_timeout_s=0,
            log=io.StringIO(),
            poll_interval_s=POLL_S,
        )
    assert _wait_gone(int(worker.read_text()))


def test_an_exit_while_starting_kills_the_grandchildren(worker: Path) -> None:
    """A vLLM that dies while loading leaves no engine core behind holding the GPU."""
    with pytest.raises(VllmStartupError, match="exited with code 3"):
        start_server(
            _fake_vllm(worker, "sys.exit(3)"),
            port=_free_port(),
            startup_timeout_s=3600,
            log=io.StringIO(),
            poll_interval_s=POLL_S,
        )
    assert _wait_gone(int(worker.read_text()))


def test_stop_terminates_the_whole_group(worker: Path, servers: list[RunningServer]) -> None:
    """``RunningServer.stop`` sends SIGTERM to vLLM and its workers, and reaps vLLM."""
    port = _free_port()
    server = start_server(
        _fake_vllm(worker, _listen(port)),
        port=port,
        startup_timeout_s=3600,
        log=io.StringIO(),
        poll_interval_s=POLL_S,
    )
    servers.append(server)
    grandchild = int(worker.read_text())
    assert not _gone(grandchild)
    assert server.stop() == -signal.SIGTERM
    assert _wait_gone(grandchild)


def test_an_exit_while_serving_kills_the_grandchildren(
    worker: Path, servers: list[RunningServer]
) -> None:
    """When vLLM exits while serving, its workers are killed before ``on_exit`` is called."""
    port = _free_port()
    server = start_server(
        _fake_vllm(worker, _listen(port, exit_after_accept=True)),  # the port probe ends it
        port=port,
        startup_timeout_s=3600,
        log=io.StringIO(),
        poll_interval_s=POLL_S,
    )
    servers.append(server)
    exited = threading.Event()
    codes: list[int] = []

    def on_exit(code: int, tail: list[str]) -> None:
        codes.append(code)
        exited.set()

    server.watch(on_exit)
    assert exited.wait(WAIT_S)
    assert codes == [7]
    assert _wait_gone(int(worker.read_text()))
