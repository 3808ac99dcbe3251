"""Start ``vllm serve`` from an argv list (never a shell), echo its log, and fail fast.

Modal's ``@modal.web_server`` waits for a port to open, up to its startup timeout. If vLLM
dies while loading (a bad flag, out of memory, a missing file), the port never opens and a plain
``subprocess.Popen`` would leave the container waiting out the whole timeout, 30 minutes. Here
the start-up wait watches the process too: when it exits first, :func:`start_server` raises
:class:`~gptoss_modal._exceptions.VllmStartupError` at once, carrying vLLM's last log lines.

vLLM is not one process: its engine core and, with tensor parallelism, one worker per GPU are
its children, and they hold the GPUs. So vLLM starts in a session (a process group) of its own,
and every stop (a start-up timeout, an early exit, :meth:`RunningServer.stop`, vLLM's exit while
serving) signals the whole group, leaving no orphan holding a GPU.

Every line vLLM prints is echoed with the secret values (the API key, the Hub token) replaced
by ``[REDACTED]``, so they never reach the container log or an exception.

No modal import: this runs the same anywhere, and the tests run it with fake servers.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO

from gptoss_modal._exceptions import VllmStartupError

__all__ = ["LOG_TAIL_LINES", "Redactor", "RunningServer", "start_server"]

LOG_TAIL_LINES = 40  # how much of vLLM's log an error carries
PORT_POLL_INTERVAL_S = 1.0  # how often the start-up wait checks the port and the process
PORT_CONNECT_TIMEOUT_S = 1.0
LOG_DRAIN_TIMEOUT_S = 5.0  # after vLLM exits, how long to wait for its last lines
STOP_GRACE_S = 30.0  # after SIGTERM, how long vLLM's processes get to exit before SIGKILL
STOP_POLL_INTERVAL_S = 0.05
REDACTED = "[REDACTED]"
MIN_SECRET_CHARS = 4  # shorter values would redact ordinary words


class Redactor:
    """Replaces each secret value in a text with ``[REDACTED]``."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        # Longest first, so a secret containing another is replaced whole.
        self._secrets = sorted(
            {s for s in secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


@dataclass
class RunningServer:
    """A vLLM process whose port is open: its handle and the tail of its log so far."""

    process: subprocess.Popen[bytes]
    tail: collections.deque[str]
    _pump: threading.Thread = field(repr=False)

    def log_tail(self) -> list[str]:
        """The last lines vLLM printed (redacted)."""
        return list(self.tail)

    def returncode(self) -> int | None:
        """vLLM's exit code once it has exited, else ``None`` (a snapshot start's steps ask)."""
        return self.process.poll()

    def stop(self, grace_s: float = STOP_GRACE_S) -> int:
        """Stop vLLM and every process it started: SIGTERM to its process group, then SIGKILL
        to what is left after ``grace_s``. Returns vLLM's exit code."""
        _signal_group(self.process, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while not _exited(self.process) and time.monotonic() < deadline:
            time.sleep(STOP_POLL_INTERVAL_S)
        _signal_group(self.process, signal.SIGKILL)  # the workers, even when the parent exited
        code = self.process.wait()
        self._pump.join(LOG_DRAIN_TIMEOUT_S)
        return code

    def watch(self, on_exit: Callable[[int, list[str]], None]) -> threading.Thread:
        """Call ``on_exit(returncode, last_lines)`` from a daemon thread when vLLM exits
        (after killing what is left of its process group: workers must not outlive it)."""

        def wait() -> None:
            with contextlib.suppress(ChildProcessError):  # exited, not yet reaped (see _exited)
                os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOWAIT)
            _signal_group(self.process, signal.SIGKILL)
            code = self.process.wait()
            self._pump.join(LOG_DRAIN_TIMEOUT_S)
            on_exit(code, self.log_tail())

        thread = threading.Thread(target=wait, name="vllm-watch", daemon=True)
        thread.start()
        return thread


def start_server(
    argv: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    secrets: Iterable[str | None] = (),
    startup_timeout_s: float,
    host: str = "127.0.0.1",
    log: IO[str] | None = None,
    poll_interval_s: float = PORT_POLL_INTERVAL_S,
) -> RunningServer:
    """Run ``argv`` and return once ``host:port`` accepts connections.

    ``env`` is added to this process's environment. The child's stdout and stderr are echoed to
    ``log`` (stdout by default) with ``secrets`` redacted. Raises :class:`VllmStartupError`
    with the log's last lines if the process exits first or the port is still closed after
    ``startup_timeout_s`` (the process is then killed). The child runs in a new session, and
    its whole process group is killed in both cases, so its own children go with it.
    """
    redact = Redactor(secrets)
    out = log if log is not None else sys.stdout
    tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    process = subprocess.Popen(
        list(argv),
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: vLLM's workers are stopped with it
    )
    assert process.stdout is not None
    pump = threading.Thread(
        target=_pump_log, args=(process.stdout, out, tail, redact), name="vllm-log", daemon=True
    )
    pump.start()
    name = argv[0] if argv else "server"
    deadline = time.monotonic() + startup_timeout_s
    while True:
        if _exited(process):
            _signal_group(process, signal.SIGKILL)  # an engine core it left behind
            code = process.wait()
            pump.join(LOG_DRAIN_TIMEOUT_S)
            raise VllmStartupError(
                f"{name} exited with code {code} before it opened port {port}",
                returncode=code,
                log_tail=list(tail),
            )
        if _port_open(host, port):
            return RunningServer(process, tail, pump)
        if time.monotonic() >= deadline:
            _signal_group(process, signal.SIGKILL)
            process.wait()
            pump.join(LOG_DRAIN_TIMEOUT_S)
            raise VllmStartupError(
                f"{name} did not open port {port} within {startup_timeout_s:g} s; it was killed",
                returncode=process.returncode,
                log_tail=list(tail),
            )
        time.sleep(poll_interval_s)


def _exited(process: subprocess.Popen[bytes]) -> bool:
    """Whether the process has exited, leaving it unreaped: until it is reaped its pid (its
    group's id) cannot be reused, so signalling the group cannot hit an unrelated process."""
    if process.returncode is not None:
        return True
    try:
        state = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # reaped elsewhere
        return True
    return state is not None


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Send ``sig`` to the process group ``process`` leads (its pid: it started a session)."""
    with contextlib.suppress(ProcessLookupError):  # every process of the group has exited
        os.killpg(process.pid, sig)


def _pump_log(
    stream: IO[bytes], out: IO[str], tail: collections.deque[str], redact: Redactor
) -> None:
    """Copy the child's output line by line: redacted, to ``out`` and into ``tail``."""
    for raw in iter(stream.readline, b""):
        line = redact(raw.decode("utf-8", "replace").rstrip("\r\n"))
        tail.append(line)
        try:
            out.write(line + "\n")
            out.flush()
        except (OSError, ValueError):  # the log is gone (closed at interpreter exit): keep tail
            pass
    stream.close()


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PORT_CONNECT_TIMEOUT_S):
            return True
    except OSError:
        return False
