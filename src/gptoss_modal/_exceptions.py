"""Every error gptoss-modal raises, under one base class.

Lower-level errors (aiohttp, json, the Hugging Face Hub client, Modal) are turned into these in
exactly one place per layer, with ``raise ... from exc`` so the original stays on ``__cause__``.

The hierarchy::

    GptossModalError
    ├── ConfigError                 a config value is not allowed (names field, value, allowed)
    │   └── CommandParseError       an argv cannot be read back into a ServeConfig
    ├── StreamError                 the bytes or JSON of a stream are not what vLLM sends
    │   ├── SSEDecodeError          an event outgrew the decoder's limit, or it was fed after close
    │   ├── ChunkParseError         malformed JSON, or a chunk of the wrong shape
    │   └── IncompleteStreamError   the stream ended before ``[DONE]`` (keeps the partial result)
    ├── UpstreamError               vLLM reported an error inside a 200 stream (message, type, code)
    ├── TransportError              talking to the server failed
    │   ├── ConnectError            the connection could not be made
    │   ├── TimeoutException        (also a builtins.TimeoutError) something took too long
    │   │   ├── ConnectTimeout      connecting took too long
    │   │   ├── StallTimeout        no bytes arrived for too long mid-response
    │   │   └── HealthTimeout       the server did not become healthy in time
    │   └── HTTPStatusError         a non-2xx reply; carries status and vLLM's error JSON
    │       └── AuthenticationError 401: the API key is missing or wrong
    ├── BenchmarkError              a benchmark run could not produce results
    │   ├── AllRequestsFailed       not one measured request succeeded (carries the run)
    │   └── MetricsFormatError      ``/metrics`` is not the Prometheus text format
    ├── PreflightError              the model, revision or draft cannot be read on the Hub
    ├── VllmStartupError            vLLM exited (or never opened its port) while starting;
    │                               carries its exit code and last log lines, secrets redacted
    └── SnapshotError               a snapshot start's step failed (warm-up, sleep, wake, the
                                    output canary): names the step; the container then exits

Errors that happen mid-stream carry what was received so far in ``partial``, so a failure late
in a long generation never throws the text away.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for a type only: the bench is imported where it runs
    from gptoss_modal.bench.results import BenchRun

__all__ = [
    "AllRequestsFailed",
    "AuthenticationError",
    "BenchmarkError",
    "ChunkParseError",
    "CommandParseError",
    "ConfigError",
    "ConnectError",
    "ConnectTimeout",
    "GptossModalError",
    "HTTPStatusError",
    "HealthTimeout",
    "IncompleteStreamError",
    "MetricsFormatError",
    "PreflightError",
    "SSEDecodeError",
    "SnapshotError",
    "StallTimeout",
    "StreamError",
    "TimeoutException",
    "TransportError",
    "UpstreamError",
    "VllmStartupError",
]


class GptossModalError(Exception):
    """Base class of every error this package raises."""


class ConfigError(GptossModalError, ValueError):
    """A configuration value is not allowed.

    ``field`` is the config field (or CLI/env/TOML key) at fault, ``value`` what was given and
    ``allowed`` a human description of what would have been accepted. ``message``, when given,
    replaces the ``field=value is not allowed: allowed`` sentence: for an option whose value
    says nothing (a file name, a flag) or must not be shown (it may hold a secret).
    """

    def __init__(
        self,
        field: str,
        value: object,
        allowed: str,
        *,
        source: str | None = None,
        message: str | None = None,
    ):
        self.field = field
        self.value = value
        self.allowed = allowed
        self.source = source
        self.message = message
        super().__init__(field, value, allowed)

    def __str__(self) -> str:
        # Built on demand so a loader can add ``source`` after the fact.
        where = f" (from {self.source})" if self.source else ""
        if self.message is not None:
            return f"{self.message}{where}"
        return f"{self.field}={self.value!r}{where} is not allowed: {self.allowed}"


class CommandParseError(ConfigError):
    """An argv could not be read back into a ServeConfig."""


class StreamError(GptossModalError):
    """The stream's bytes or JSON are not what an OpenAI-compatible server sends."""

    def __init__(self, message: str, *, partial: Any = None) -> None:
        super().__init__(message)
        self.partial = partial


class SSEDecodeError(StreamError):
    """An event grew past the decoder's size limit, or the decoder was fed after ``close()``.

    ``events`` holds the events the failing read completed before the error (none are lost).
    """

    def __init__(self, message: str, *, partial: Any = None, events: list[Any] | None = None):
        super().__init__(message, partial=partial)
        self.events = list(events or [])


class ChunkParseError(StreamError):
    """An event's data is not valid JSON or not a chat-completion chunk."""


class IncompleteStreamError(StreamError):
    """The stream ended before ``data: [DONE]``; ``partial`` holds what was received."""


class UpstreamError(GptossModalError):
    """The server reported an error inside a stream it had already answered 200 to."""

    def __init__(
        self,
        message: str,
        *,
        type: str | None = None,
        code: int | str | None = None,
        param: str | None = None,
        partial: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.partial = partial

    def __str__(self) -> str:
        kind = f"{self.type} " if self.type else ""
        code = f" (code {self.code})" if self.code is not None else ""
        return f"upstream {kind}error{code}: {self.message}"


class TransportError(GptossModalError):
    """Talking to the server failed."""

    def __init__(self, message: str, *, url: str | None = None, partial: Any = None) -> None:
        super().__init__(message)
        self.url = url
        self.partial = partial


class ConnectError(TransportError):
    """The TCP/TLS connection could not be made (refused, DNS, reset before a reply)."""


class TimeoutException(TransportError, builtins.TimeoutError):
    """Something took longer than its limit."""


class ConnectTimeout(TimeoutException):
    """Connecting took longer than the connect timeout."""


class StallTimeout(TimeoutException):
    """No bytes arrived for longer than the stall timeout in the middle of a response."""


class HealthTimeout(TimeoutException):
    """``/health`` did not answer 200 within the wait; carries the last status seen."""

    def __init__(self, message: str, *, url: str | None = None, last_status: str | None = None):
        super().__init__(message, url=url)
        self.last_status = last_status


class HTTPStatusError(TransportError):
    """The server answered with a non-2xx status.

    ``status`` is the HTTP status, ``body`` the raw body text and ``error`` vLLM's error object
    (``{"message", "type", "param", "code"}``) when the body carried one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: str = "",
        error: dict[str, Any] | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message, url=url)
        self.status = status
        self.body = body
        self.error = error


class AuthenticationError(HTTPStatusError):
    """401: the API key is missing or wrong."""


class BenchmarkError(GptossModalError):
    """A benchmark run could not produce results (for example every request failed)."""


class AllRequestsFailed(BenchmarkError):
    """Not one measured request succeeded; ``run`` holds every failed request's record."""

    def __init__(self, message: str, run: BenchRun) -> None:
        super().__init__(message)
        self.run = run


class MetricsFormatError(BenchmarkError):
    """``/metrics`` answered something that is not the Prometheus text format."""


class PreflightError(GptossModalError):
    """The model, its revision or the speculator cannot be read on the Hugging Face Hub."""


class VllmStartupError(GptossModalError):
    """vLLM exited, or did not open its port in time, while starting.

    ``returncode`` is its exit code (``None`` if it was still running) and ``log_tail`` its last
    log lines, with secrets already redacted; ``str()`` shows both, so a container that fails
    this way says why in its own log instead of waiting out Modal's startup timeout.
    """

    def __init__(
        self, message: str, *, returncode: int | None = None, log_tail: list[str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.returncode = returncode
        self.log_tail = list(log_tail or [])

    def __str__(self) -> str:
        if not self.log_tail:
            return f"{self.message} (it printed nothing)"
        lines = "\n".join(f"  | {line}" for line in self.log_tail)
        return f"{self.message}; its last {len(self.log_tail)} log lines:\n{lines}"


class SnapshotError(GptossModalError):
    """A step of a GPU-snapshot start failed: ``step`` names it (``"health"``, ``"warm-up"``,
    ``"sleep"``, ``"wake"``, ``"canary"``, ...). After a restore the container exits on it, so
    Modal starts the container again without the snapshot."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(f"snapshot {step}: {message}")
        self.step = step
