"""Starting vLLM inside the container: no shell, fail fast with its last lines, never leak keys.

Real child processes stand in for vLLM: small Python programs that print, exit or listen.
"""

from __future__ import annotations

import io
import socket
import sys
import threading
from collections.abc import Iterator

import pytest

from gptoss_modal._exceptions import VllmStartupError
from gptoss_modal.deploy.launch import (
    LOG_TAIL_LINES,
    REDACTED,
    Redactor,
    RunningServer,
    start_server,
)

SECRET = "sk-launch-test-secret-value-42"
WAIT_S = 60.0  # bounds a wait for a child; no assertion is about time
POLL_S = 0.02  # check the child often so the tests finish quickly


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def _listener(port: int, *, lines: tuple[str, ...] = (), exit_after_accept: bool = False) -> str:
    """A fake vLLM that prints, then listens on ``port`` (and optionally exits after a connect)."""
    prints = "".join(f"print({line!r}, flush=True); " for line in lines)
    tail = "s.accept(); sys.exit(7)" if exit_after_accept else "time.sleep(600)"
    return (
        f"import socket, sys, time; {prints}"
        f"s = socket.socket(); s.bind(('127.0.0.1', {port})); s.listen(); {tail}"
    )


@pytest.fixture
def log() -> io.StringIO:
    """Where the child's echoed log goes."""
    return io.StringIO()


@pytest.fixture
def cleanup() -> Iterator[list[RunningServer]]:
    """Servers a test started; killed afterwards if still running."""
    servers: list[RunningServer] = []
    yield servers
    for server in servers:
        if server.process.poll() is None:
            server.process.kill()
        server.process.wait(WAIT_S)


def test_a_process_that_exits_while_starting_fails_at_once(log: io.StringIO) -> None:
    """A child that exits before opening its port raises with its exit code, not a timeout."""
    code = "print('loading weights', flush=True); print('CUDA out of memory'); raise SystemExit(3)"
    with pytest.raises(VllmStartupError) as info:
        start_server(
            _python(code),
            port=_free_port(),
            startup_timeout_s=3600,
            log=log,
            poll_interval_s=POLL_S,
        )
    error = info.value
    assert error.returncode == 3
    assert error.log_tail == ["loading weights", "CUDA out of memory"]
    assert "exited with code 3" in str(error)
    assert "CUDA out of memory" in str(error)


def test_the_error_keeps_only_the_last_lines(log: io.StringIO) -> None:
    """A long log is cut to its last lines in the error; the full log still went to the log."""
    code = "import sys\nfor i in range(200): print(f'line {i}')\nsys.exit(1)"
    with pytest.raises(VllmStartupError) as info:
        start_server(
            _python(code),
            port=_free_port(),
            startup_timeout_s=3600,
            log=log,
            poll_interval_s=POLL_S,
        )
    assert len(info.value.log_tail) == LOG_TAIL_LINES
    assert info.value.log_tail[-1] == "line 199"
    assert "line 0\n" in log.getvalue()


def test_stderr_is_part_of_the_log(log: io.StringIO) -> None:
    """What vLLM prints to stderr (its tracebacks) is echoed and kept like stdout."""
    code = "import sys; sys.stderr.write('Traceback: ValueError\\n'); sys.exit(1)"
    with pytest.raises(VllmStartupError) as info:
        start_server(
            _python(code),
            port=_free_port(),
            startup_timeout_s=3600,
            log=log,
            poll_interval_s=POLL_S,
        )
    assert info.value.log_tail == ["Traceback: ValueError"]
    assert "Traceback: ValueError" in log.getvalue()


def test_returns_once_the_port_is_open(log: io.StringIO, cleanup: list[RunningServer]) -> None:
    """A child that listens on the port makes start_server return with the child running."""
    port = _free_port()
    server = start_server(
        _python(_listener(port, lines=("engine ready",))),
        port=port,
        startup_timeout_s=WAIT_S,
        log=log,
        poll_interval_s=POLL_S,
    )
    cleanup.append(server)
    assert server.process.poll() is None
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S):
        pass


def test_a_port_that_never_opens_kills_the_child(log: io.StringIO) -> None:
    """If the port stays closed past the timeout, the child is killed and the error says so."""
    code = "import time; print('still compiling', flush=True); time.sleep(600)"
    with pytest.raises(VllmStartupError) as info:
        start_server(
            _python(code), port=_free_port(), startup_timeout_s=0.5, log=log, poll_interval_s=POLL_S
        )
    assert "did not open port" in str(info.value)
    assert info.value.returncode is not None  # killed, not left running


def test_the_argv_is_run_without_a_shell(log: io.StringIO) -> None:
    """Shell syntax in an argument reaches the program literally: no shell interprets it."""
    code = "import sys; print(sys.argv[1]); sys.exit(2)"
    with pytest.raises(VllmStartupError) as info:
        start_server(
            [*_python(code), "$HOME; echo pwned"],
            port=_free_port(),
            startup_timeout_s=60,
            log=log,
            poll_interval_s=POLL_S,
        )
    assert info.value.log_tail == ["$HOME; echo pwned"]


def test_env_is_added_to_the_childs_environment(
    log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The builder's variables reach the child on top of the container's environment."""
    monkeypatch.setenv("FROM_CONTAINER", "yes")
    code = (
        "import os, sys; print(os.environ['FROM_CONTAINER'], os.environ['FROM_BUILDER']); "
        "sys.exit(1)"
    )
    with pytest.raises(VllmStartupError) as info:
        start_server(
            _python(code),
            port=_free_port(),
            env={"FROM_BUILDER": "1"},
            startup_timeout_s=60,
            log=log,
            poll_interval_s=POLL_S,
        )
    assert info.value.log_tail == ["yes 1"]


def test_secrets_are_redacted_in_the_log_and_the_error(log: io.StringIO) -> None:
    """A key the child prints never reaches the log, the error's lines or its message."""
    code = f"print('api key is {SECRET} ok'); raise SystemExit(1)"
    with pytest.raises(VllmStartupError) as info:
        start_server(
            _python(code),
            port=_free_port(),
            secrets=[SECRET],
            startup_timeout_s=60,
            log=log,
            poll_interval_s=POLL_S,
        )
    assert SECRET not in log.getvalue()
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value.log_tail)
    assert f"api key is {REDACTED} ok" in log.getvalue()


def test_watch_reports_a_later_exit(log: io.StringIO, cleanup: list[RunningServer]) -> None:
    """After start-up, the watcher calls back with the exit code and the last lines."""
    port = _free_port()
    server = start_server(
        _python(_listener(port, lines=("serving",), exit_after_accept=True)),
        port=port,
        startup_timeout_s=WAIT_S,
        log=log,
        poll_interval_s=POLL_S,
    )
    cleanup.append(server)
    exited = threading.Event()
    seen: list[tuple[int, list[str]]] = []

    def on_exit(code: int, tail: list[str]) -> None:
        seen.append((code, tail))
        exited.set()

    server.watch(on_exit)
    # start_server's own probe was accepted already, so the child exits by itself.
    assert exited.wait(WAIT_S)
    assert seen == [(7, ["serving"])]


def test_redactor_replaces_every_secret_and_ignores_short_ones() -> None:
    """Each secret is replaced, the longest first; empty or tiny values redact nothing."""
    redact = Redactor([SECRET, SECRET + "-longer", "", None, "ab"])
    assert redact(f"{SECRET}-longer and {SECRET}") == f"{REDACTED} and {REDACTED}"
    assert redact("about abc") == "about abc"
