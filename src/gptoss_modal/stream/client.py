"""An async client for vLLM's OpenAI-compatible server, on aiohttp: health and streamed chat.

- :func:`wait_healthy` / :meth:`Client.wait_healthy` poll ``/health`` with backoff through a
  cold start: a refused connection, a timeout, 503 and proxy errors mean "not yet"; 401, 403 and
  404 (the URL or key is wrong), a host that does not resolve and a failed TLS handshake or
  certificate raise at once (:func:`worth_waiting` tells them apart). Progress goes to a
  callback.
- :func:`stream_chat` / :meth:`Client.stream_chat` post ``/v1/chat/completions`` with
  ``stream: true`` and return a :class:`ChatStream`: iterate it for typed chunks as they
  arrive, or ``await stream.collect()`` (the cheapest way to run many streams at once). Either
  way ``stream.result`` is a :class:`~gptoss_modal.stream.accumulator.ChatResult` with every
  chunk, its arrival time (one ``time.perf_counter()`` stamp per network read, taken before
  parsing), the timings and the accumulated message.
- Errors are ours (see :mod:`gptoss_modal._exceptions`). aiohttp's, asyncio's and the OS's
  errors are translated in one place, :mod:`gptoss_modal.stream.errors`, with ``raise ... from
  exc``; errors raised after the reply started carry the partial :class:`ChatResult` as
  ``partial``. The request body is :func:`~gptoss_modal.stream.request.build_chat_request`'s.

The decode path does one :class:`~gptoss_modal.stream.decoder.ChatChunkDecoder` feed per network
read and one ``msgspec`` decode per chunk: no per-chunk pydantic objects, no per-chunk timer or
task.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import aiohttp
import msgspec
import yarl

from gptoss_modal._exceptions import (
    ConfigError,
    ConnectError,
    HealthTimeout,
    HTTPStatusError,
    StreamError,
    TimeoutException,
)
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION
from gptoss_modal.stream import _checks
from gptoss_modal.stream._policy import (
    DEFAULT_MAX_RETRIES,
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    redirect_target,
)
from gptoss_modal.stream.accumulator import ChatResult
from gptoss_modal.stream.chatstream import ChatStream as ChatStream  # re-exported

# The private names the client's methods (and the health wait) use for the error mapping.
from gptoss_modal.stream.errors import ERROR_BODY_LIMIT_BYTES
from gptoss_modal.stream.errors import LOWER_LEVEL_ERRORS as _LOWER_LEVEL_ERRORS
from gptoss_modal.stream.errors import PERMANENT_CONNECT_ERRORS as _PERMANENT_CONNECT_ERRORS
from gptoss_modal.stream.errors import Credentials as _Credentials
from gptoss_modal.stream.errors import preview as _preview
from gptoss_modal.stream.errors import status_error as _status_error
from gptoss_modal.stream.errors import translate as _translate
from gptoss_modal.stream.request import build_chat_request
from gptoss_modal.stream.sse import DEFAULT_MAX_EVENT_CHARS

if TYPE_CHECKING:
    from gptoss_modal.stream.responses_accumulator import ResponseResult
    from gptoss_modal.stream.responses_client import ResponseStream

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_HEALTH_TIMEOUT_S",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_STALL_TIMEOUT_S",
    "Client",
    "HealthProgress",
    "stream_chat",
    "wait_healthy",
    "worth_waiting",
]

DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0
# No event for this long fails a stream (bytes without an event, such as heartbeat comments, do
# not count). It includes the wait before the first token, so it must cover queueing and prefill
# under load.
DEFAULT_STALL_TIMEOUT_S: Final = 120.0
# A first start on a new B200 compiles FlashInfer's kernels for 10-15 minutes; the Modal app's
# startup timeout is 30 minutes.
DEFAULT_HEALTH_TIMEOUT_S: Final = 30 * 60.0
HEALTH_PROBE_TIMEOUT_S: Final = 10.0  # one /health request; Modal may hold it during a cold start
HEALTH_MIN_PROBE_S: Final = 5.0  # even the last check of a wait gets this long to answer
HEALTH_FIRST_DELAY_S: Final = 0.25  # the wait after the first failed check, growing by 1.5x...
HEALTH_MAX_DELAY_S: Final = 5.0  # ...up to this
HEALTH_BACKOFF: Final = 1.5
METRICS_BODY_LIMIT_BYTES: Final = 16 * 1024 * 1024  # vLLM's /metrics is ~100 KB
METRICS_TIMEOUT_S: Final = 10.0
# /health answers that mean "the URL or the credentials are wrong", not "still starting".
_FATAL_HEALTH_STATUSES: Final = frozenset({400, 401, 403, 404, 405})

_json_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True, slots=True)
class HealthProgress:
    """Where a :func:`wait_healthy` is: seconds since it started, checks made, the last answer,
    and how many 5xx answers came in a row (a refusal or a timeout neither counts nor resets)."""

    elapsed_s: float
    attempts: int
    last_status: str
    healthy: bool
    server_errors: int = 0


def _base_url(url: str) -> str:
    """The server root: no trailing slash, and a trailing ``/v1`` (OpenAI-style) removed."""
    try:
        parsed = yarl.URL(url)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError("base_url", url, "an http:// or https:// URL, e.g. http://127.0.0.1:8000")
    root = str(parsed).rstrip("/")
    return root.removesuffix("/v1")


class Client:
    """A connection pool to one server. Use ``async with Client(url) as client:``.

    ``api_key`` is sent as ``Authorization: Bearer``; ``headers`` are added to every request
    (for example Modal's ``Modal-Key``/``Modal-Secret`` proxy auth); neither may hold a control
    character. ``connect_timeout_s`` bounds connecting; ``stall_timeout_s`` fails a stream when
    no event arrives for that long while it is read (heartbeat comments and stray bytes do not
    count; ``None`` waits for ever); ``request_timeout_s`` bounds a whole chat request, retries
    and reading included (``None``: no deadline). ``max_retries`` is how often a chat request is
    sent again when it fails before its reply began (see :mod:`gptoss_modal.stream._policy`;
    ``0`` for a benchmark, where each failure must count). ``max_event_chars`` bounds one
    server-sent event. ``clock`` stamps requests and chunks (``time.perf_counter`` by default);
    ``sleep`` waits between health checks and retries (``asyncio.sleep``; tests pass a fake).
    Every parameter is checked: a wrong one raises :class:`ConfigError` naming it.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        model: str | None = None,
        headers: Mapping[str, str] | None = None,
        connect_timeout_s: float | None = DEFAULT_CONNECT_TIMEOUT_S,
        stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
        request_timeout_s: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        max_event_chars: int = DEFAULT_MAX_EVENT_CHARS,
        max_connections: int = 1024,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.base_url = _base_url(base_url)
        self.model = _checks.optional_text("model", model, "the served model's name")
        self.connect_timeout_s = _checks.seconds(
            "connect_timeout_s", connect_timeout_s, none="no limit"
        )
        self.stall_timeout_s = _checks.seconds("stall_timeout_s", stall_timeout_s, none="no limit")
        self.request_timeout_s = _checks.seconds(
            "request_timeout_s", request_timeout_s, none="no deadline"
        )
        self.max_retries = _checks.count(
            "max_retries", max_retries, minimum=0, what="number of retries"
        )
        self.max_event_chars = _checks.count(
            "max_event_chars", max_event_chars, minimum=1, what="number of characters"
        )
        self._max_connections = _checks.count(
            "max_connections", max_connections, minimum=1, what="number of connections"
        )
        self.clock = _checks.function("clock", clock, "seconds, e.g. time.perf_counter")
        self.sleep = _checks.function("sleep", sleep, "an awaitable wait, e.g. asyncio.sleep")
        api_key = _checks.credential("api_key", api_key)
        self._api_key_sent = bool(api_key)
        self._headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._headers.update(_checks.headers("headers", headers))
        sent = {name.lower() for name in self._headers}
        self._credentials = _Credentials(
            api_key=bool(api_key) or "authorization" in sent,
            proxy_auth="modal-key" in sent or "modal-secret" in sent,
        )
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"Client({self.base_url!r}, api_key={'set' if self._api_key_sent else None})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                headers=self._headers,
            )
        return self._session

    async def wait_healthy(
        self,
        *,
        timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
        on_progress: Callable[[HealthProgress], None] | None = None,
        probe_timeout_s: float = HEALTH_PROBE_TIMEOUT_S,
        max_server_errors: int | None = None,
    ) -> HealthProgress:
        """Poll ``/health`` until it answers 200, for at most ``timeout_s`` seconds.

        Checks once even with ``timeout_s=0``. Waits 0.25 s after the first failed check, 1.5x
        longer after each next one, at most 5 s. Calls ``on_progress`` after every check.
        Raises :class:`HealthTimeout` (with the last status) when time runs out;
        :class:`AuthenticationError` / :class:`HTTPStatusError` at once for 401, 403, 404; and
        :class:`ConnectError` at once when the host does not resolve or TLS fails.

        ``max_server_errors`` bounds a crash loop: a vLLM that dies while starting answers
        ``/health`` 503, and Modal's proxy answers 5xx for a container that failed to start,
        while a cold start only refuses or holds requests. After that many 5xx answers in a row
        (refusals and timeouts between them neither count nor reset), raise
        :class:`HTTPStatusError` with the last body (bounded, credentials hidden). ``None``
        (the default) waits through 5xx, as for a server that answers 503 while it loads.
        """
        _checks.seconds("timeout_s", timeout_s, zero="check once")
        _checks.seconds("probe_timeout_s", probe_timeout_s)
        if max_server_errors is not None:
            _checks.count("max_server_errors", max_server_errors, minimum=1, what="count or None")
        url = f"{self.base_url}/health"
        start = self.clock()
        delay = HEALTH_FIRST_DELAY_S
        attempts = server_errors = 0
        while True:
            attempts += 1
            remaining = timeout_s - (self.clock() - start)
            probe = min(probe_timeout_s, max(remaining, HEALTH_MIN_PROBE_S))
            check = await self._check_health(url, probe)
            server_errors = _count_server_errors(server_errors, check.status)
            progress = HealthProgress(
                self.clock() - start, attempts, check.summary, check.healthy, server_errors
            )
            if on_progress is not None:
                on_progress(progress)
            if progress.healthy:
                return progress
            if max_server_errors is not None and server_errors >= max_server_errors:
                raise self._crash_loop_error(url, check, progress)
            remaining = timeout_s - progress.elapsed_s
            if remaining <= 0:
                checks = "1 check" if attempts == 1 else f"{attempts} checks"
                raise HealthTimeout(
                    f"{url} was not healthy after {progress.elapsed_s:.1f} s ({checks}); "
                    f"last: {check.summary}",
                    url=url,
                    last_status=check.summary,
                )
            await self.sleep(min(delay, remaining))
            delay = min(delay * HEALTH_BACKOFF, HEALTH_MAX_DELAY_S)

    def _crash_loop_error(
        self, url: str, check: _HealthCheck, progress: HealthProgress
    ) -> HTTPStatusError:
        """The error that ends a wait on a server that keeps failing to start."""
        body = check.body.decode("utf-8", "replace")
        for name, value in self._headers.items():  # a proxy may echo what it was sent
            if name.lower() in _CREDENTIAL_HEADERS and value:
                body = body.replace(value.removeprefix("Bearer "), "<redacted>")
        return HTTPStatusError(
            f"{url} answered {check.summary} {progress.server_errors} times in a row while "
            f"starting ({progress.attempts} checks in {progress.elapsed_s:.0f} s): the server is "
            f"failing to start, not still loading; last body: {_preview(body)}; its own logs "
            "say why (`modal run` streams them; or `modal app logs APP`)",
            status=check.status or 500,
            body=body,
            url=url,
        )

    async def _check_health(self, url: str, probe_s: float) -> _HealthCheck:
        """One ``GET /health``: what it answered and whether that is healthy."""
        limits = aiohttp.ClientTimeout(total=probe_s, sock_connect=self.connect_timeout_s)
        try:
            async with self._http().get(url, timeout=limits, allow_redirects=False) as response:
                if response.status == 200:
                    return _HealthCheck("200 OK", healthy=True, status=200)
                body = await response.content.read(ERROR_BODY_LIMIT_BYTES)
        except _LOWER_LEVEL_ERRORS as exc:
            error = _translate(
                exc,
                url=url,
                connect_timeout_s=self.connect_timeout_s,
                timeout_s=probe_s,
                stall_timeout_s=None,
                partial=None,
            )
            if worth_waiting(error):
                return _HealthCheck(str(error), healthy=False)  # not up yet: no answer
            raise error from exc
        if response.status in _FATAL_HEALTH_STATUSES:
            raise _status_error(response.status, response.reason, body, url, self._credentials)
        summary = f"HTTP {response.status} {response.reason or ''}".rstrip()
        return _HealthCheck(summary, healthy=False, status=response.status, body=body)

    def stream_chat(
        self,
        messages: str | Sequence[Mapping[str, Any]],
        *,
        system: str | None = None,
        model: str | None = None,
        reasoning_effort: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_tokens: int | None = None,
        continuous_usage: bool = False,
        extra: Mapping[str, Any] | None = None,
        vllm_version: str = DEFAULT_VLLM_VERSION,
        mapped_efforts: Collection[str] = (),
        headers: Mapping[str, str] | None = None,
    ) -> ChatStream:
        """Start a streamed chat completion (the request is sent on first use).

        The arguments are those of :func:`build_chat_request` (``vllm_version`` is the
        server's, which decides the efforts it takes); ``model`` defaults to the client's
        (vLLM serves its only model when none is named). ``headers`` are sent with this request
        only, beside the client's (the benchmark's ``Modal-Session-ID``).
        """
        body = build_chat_request(
            messages,
            system=system,
            model=model if model is not None else self.model,
            reasoning_effort=reasoning_effort,
            tools=tools,
            max_tokens=max_tokens,
            continuous_usage=continuous_usage,
            extra=extra,
            vllm_version=vllm_version,
            mapped_efforts=mapped_efforts,
        )
        return ChatStream(self, _json_encode(body), headers=_checks.headers("headers", headers))

    async def chat(
        self,
        messages: str | Sequence[Mapping[str, Any]],
        **options: Any,
    ) -> ChatResult:
        """Stream a chat completion to its end and return the result (``stream_chat`` options)."""
        async with self.stream_chat(messages, **options) as stream:
            return await stream.collect()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 30.0,
    ) -> tuple[int, bytes]:
        """One small request that is not a chat (vLLM's ``/sleep``, ``/wake_up``, ...): its
        status and body (at most 64 KiB), whatever the status. Transport failures raise the
        client's errors (:class:`ConnectError`, :class:`TimeoutException`, ...)."""
        _checks.seconds("timeout_s", timeout_s)
        url = f"{self.base_url}/{path.lstrip('/')}"
        limits = aiohttp.ClientTimeout(total=timeout_s, sock_connect=self.connect_timeout_s)
        try:
            async with self._http().request(
                method, url, params=params, headers=headers, timeout=limits, allow_redirects=False
            ) as response:
                return response.status, await response.content.read(ERROR_BODY_LIMIT_BYTES)
        except _LOWER_LEVEL_ERRORS as exc:
            raise _translate(
                exc,
                url=url,
                connect_timeout_s=self.connect_timeout_s,
                timeout_s=timeout_s,
                stall_timeout_s=None,
                partial=None,
            ) from exc

    async def fetch_metrics(self, *, timeout_s: float = METRICS_TIMEOUT_S) -> str:
        """``GET /metrics``: the server's Prometheus text, on this client's connections.

        Follows redirects within the server's origin only. Raises the client's errors
        (:class:`HTTPStatusError` for a non-200 answer or a redirect to another origin,
        :class:`ConnectError`, :class:`TimeoutException`, ...), and :class:`StreamError` for a
        body over :data:`METRICS_BODY_LIMIT_BYTES`. Never retried: a benchmark counts it.
        """
        _checks.seconds("timeout_s", timeout_s)
        url = f"{self.base_url}/metrics"
        limits = aiohttp.ClientTimeout(total=timeout_s, sock_connect=self.connect_timeout_s)
        try:
            async with asyncio.timeout(timeout_s):  # the redirects too
                return await self._metrics(url, limits)
        except _LOWER_LEVEL_ERRORS as exc:
            raise _translate(
                exc,
                url=url,
                connect_timeout_s=self.connect_timeout_s,
                timeout_s=timeout_s,
                stall_timeout_s=None,
                partial=None,
            ) from exc

    async def _metrics(self, url: str, limits: aiohttp.ClientTimeout) -> str:
        """``fetch_metrics`` without its error mapping."""
        status = 0
        for _ in range(MAX_REDIRECTS + 1):
            async with self._http().get(
                url, timeout=limits, headers={"Accept": "text/plain"}, allow_redirects=False
            ) as response:
                status = response.status
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("Location")
                    url = redirect_target(url, status, location, keeps_body=False)
                    continue
                if response.status != 200:
                    body = await response.content.read(ERROR_BODY_LIMIT_BYTES)
                    raise _status_error(
                        response.status, response.reason, body, url, self._credentials
                    )
                data = bytearray()
                async for piece in response.content.iter_any():
                    data += piece
                    if len(data) > METRICS_BODY_LIMIT_BYTES:
                        raise StreamError(
                            f"{url} sent more than {METRICS_BODY_LIMIT_BYTES} bytes of metrics"
                        )
                return data.decode("utf-8", "replace")
        raise HTTPStatusError(
            f"{url} redirected more than {MAX_REDIRECTS} times", status=status, url=url
        )

    def stream_response(
        self,
        input: str | Sequence[Mapping[str, Any]],
        *,
        instructions: str | None = None,
        model: str | None = None,
        reasoning_effort: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_output_tokens: int | None = None,
        previous_response_id: str | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ResponseStream:
        """Start a streamed Responses request, ``POST /v1/responses`` (sent on first use).

        The arguments are those of
        :func:`~gptoss_modal.stream.responses_request.build_response_request`; ``model``
        defaults to the client's; ``headers`` are sent with this request only. Returns a
        :class:`~gptoss_modal.stream.responses_client.ResponseStream`.
        """
        # Imported here: that module builds on this one (its stream is a ChatStream).
        from gptoss_modal.stream.responses_client import new_response_stream
        from gptoss_modal.stream.responses_request import build_response_request

        body = build_response_request(
            input,
            instructions=instructions,
            model=model if model is not None else self.model,
            reasoning_effort=reasoning_effort,
            tools=tools,
            max_output_tokens=max_output_tokens,
            previous_response_id=previous_response_id,
            extra=extra,
        )
        return new_response_stream(
            self, body, owns=False, headers=_checks.headers("headers", headers)
        )

    async def respond(
        self, input: str | Sequence[Mapping[str, Any]], **options: Any
    ) -> ResponseResult:
        """Stream a Responses request to its end and return the result (``stream_response``
        options)."""
        async with self.stream_response(input, **options) as stream:
            return await stream.collect()


@dataclass(frozen=True, slots=True)
class _HealthCheck:
    """One ``/health`` check: its summary, and the HTTP status and body when one came back."""

    summary: str
    healthy: bool
    status: int | None = None  # None: refused, dropped or timed out
    body: bytes = b""


# Headers whose values must not appear in an error, even when a proxy echoes them.
_CREDENTIAL_HEADERS: Final = frozenset({"authorization", "modal-key", "modal-secret"})


def _count_server_errors(so_far: int, status: int | None) -> int:
    """5xx answers in a row: one more for a 5xx, unchanged without an answer, else 0."""
    if status is None:
        return so_far
    return so_far + 1 if status >= 500 else 0


def worth_waiting(error: BaseException) -> bool:
    """Whether a failed request may succeed once the server has started: a refused or dropped
    connection or a timeout, but not a host that does not resolve or a failed TLS handshake."""
    return isinstance(error, (ConnectError, TimeoutException)) and not isinstance(
        error.__cause__, _PERMANENT_CONNECT_ERRORS
    )


async def wait_healthy(
    base_url: str,
    *,
    timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
    on_progress: Callable[[HealthProgress], None] | None = None,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    connect_timeout_s: float | None = DEFAULT_CONNECT_TIMEOUT_S,
    probe_timeout_s: float = HEALTH_PROBE_TIMEOUT_S,
    max_server_errors: int | None = None,
) -> HealthProgress:
    """Poll ``base_url``'s ``/health`` until it answers 200 (see :meth:`Client.wait_healthy`)."""
    async with Client(
        base_url, api_key=api_key, headers=headers, connect_timeout_s=connect_timeout_s
    ) as client:
        return await client.wait_healthy(
            timeout_s=timeout_s,
            on_progress=on_progress,
            probe_timeout_s=probe_timeout_s,
            max_server_errors=max_server_errors,
        )


def stream_chat(
    base_url: str,
    messages: str | Sequence[Mapping[str, Any]],
    *,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    connect_timeout_s: float | None = DEFAULT_CONNECT_TIMEOUT_S,
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
    **options: Any,
) -> ChatStream:
    """One streamed chat completion on its own connection (see :meth:`Client.stream_chat`).

    ``options`` are those of :func:`build_chat_request`. For many requests, share a
    :class:`Client` instead: it keeps connections open between them.
    """
    client = Client(
        base_url,
        api_key=api_key,
        headers=headers,
        connect_timeout_s=connect_timeout_s,
        stall_timeout_s=stall_timeout_s,
    )
    return ChatStream(
        client, _json_encode(build_chat_request(messages, **options)), owns_client=True
    )
