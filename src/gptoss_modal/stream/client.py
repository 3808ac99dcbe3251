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
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import msgspec
import yarl

from gptoss_modal._exceptions import (
    ConfigError,
    ConnectError,
    GptossModalError,
    HealthTimeout,
    HTTPStatusError,
    IncompleteStreamError,
    StreamError,
    TimeoutException,
    TransportError,
    UpstreamError,
)
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION
from gptoss_modal.stream.accumulator import ChatResult
from gptoss_modal.stream.chunks import ChatChunk
from gptoss_modal.stream.decoder import ChatChunkDecoder

# The private names the client's methods (and the health wait) use for the error mapping.
from gptoss_modal.stream.errors import LOWER_LEVEL_ERRORS as _LOWER_LEVEL_ERRORS
from gptoss_modal.stream.errors import PERMANENT_CONNECT_ERRORS as _PERMANENT_CONNECT_ERRORS
from gptoss_modal.stream.errors import Credentials as _Credentials
from gptoss_modal.stream.errors import preview as _preview
from gptoss_modal.stream.errors import status_error as _status_error
from gptoss_modal.stream.errors import translate as _translate
from gptoss_modal.stream.request import build_chat_request

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_HEALTH_TIMEOUT_S",
    "DEFAULT_STALL_TIMEOUT_S",
    "ChatStream",
    "Client",
    "HealthProgress",
    "stream_chat",
    "wait_healthy",
    "worth_waiting",
]

DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0
# No bytes for this long fails a stream. It includes the wait before the first token, so it must
# cover queueing and prefill under load.
DEFAULT_STALL_TIMEOUT_S: Final = 120.0
# A first start on a new B200 compiles FlashInfer's kernels for 10-15 minutes; the Modal app's
# startup timeout is 30 minutes.
DEFAULT_HEALTH_TIMEOUT_S: Final = 30 * 60.0
HEALTH_PROBE_TIMEOUT_S: Final = 10.0  # one /health request; Modal may hold it during a cold start
HEALTH_MIN_PROBE_S: Final = 5.0  # even the last check of a wait gets this long to answer
HEALTH_FIRST_DELAY_S: Final = 0.25  # the wait after the first failed check, growing by 1.5x...
HEALTH_MAX_DELAY_S: Final = 5.0  # ...up to this
HEALTH_BACKOFF: Final = 1.5
_ERROR_BODY_LIMIT_BYTES: Final = 64 * 1024
METRICS_BODY_LIMIT_BYTES: Final = 16 * 1024 * 1024  # vLLM's /metrics is ~100 KB
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
    (for example Modal's ``Modal-Key``/``Modal-Secret`` proxy auth). ``connect_timeout_s`` bounds
    connecting; ``stall_timeout_s`` fails a stream when no bytes arrive for that long (``None``
    waits forever). ``clock`` stamps requests and chunks (``time.perf_counter`` by default);
    ``sleep`` waits between health checks (``asyncio.sleep``; tests pass a fake).
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
        max_connections: int = 1024,
        clock: Callable[[], float] = time.perf_counter,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.base_url = _base_url(base_url)
        self.model = model
        self.connect_timeout_s = connect_timeout_s
        self.stall_timeout_s = stall_timeout_s
        self.clock = clock
        self.sleep = sleep
        self._api_key_sent = bool(api_key)
        self._headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._headers.update(headers or {})
        sent = {name.lower() for name in self._headers}
        self._credentials = _Credentials(
            api_key=bool(api_key) or "authorization" in sent,
            proxy_auth="modal-key" in sent or "modal-secret" in sent,
        )
        self._max_connections = max_connections
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
        if max_server_errors is not None and max_server_errors < 1:
            raise ConfigError("max_server_errors", max_server_errors, "a positive count or None")
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
                body = await response.content.read(_ERROR_BODY_LIMIT_BYTES)
        except _LOWER_LEVEL_ERRORS as exc:
            error = _translate(exc, url=url, timeout_s=probe_s, stall_timeout_s=None, partial=None)
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
    ) -> ChatStream:
        """Start a streamed chat completion (the request is sent on first use).

        The arguments are those of :func:`build_chat_request` (``vllm_version`` is the
        server's, which decides the efforts it takes); ``model`` defaults to the client's
        (vLLM serves its only model when none is named).
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
        return ChatStream(self, _json_encode(body))

    async def chat(
        self,
        messages: str | Sequence[Mapping[str, Any]],
        **options: Any,
    ) -> ChatResult:
        """Stream a chat completion to its end and return the result (``stream_chat`` options)."""
        async with self.stream_chat(messages, **options) as stream:
            return await stream.collect()

    async def fetch_metrics(self, *, timeout_s: float = 10.0) -> str:
        """``GET /metrics``: the server's Prometheus text, on this client's connections.

        Raises the client's errors (:class:`HTTPStatusError` for a non-200 answer,
        :class:`ConnectError`, :class:`TimeoutException`, ...), and :class:`StreamError` for a body
        over :data:`METRICS_BODY_LIMIT_BYTES`.
        """
        url = f"{self.base_url}/metrics"
        limits = aiohttp.ClientTimeout(total=timeout_s, sock_connect=self.connect_timeout_s)
        try:
            async with self._http().get(
                url, timeout=limits, headers={"Accept": "text/plain"}
            ) as response:
                if response.status != 200:
                    body = await response.content.read(_ERROR_BODY_LIMIT_BYTES)
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
        except _LOWER_LEVEL_ERRORS as exc:
            raise _translate(
                exc, url=url, timeout_s=timeout_s, stall_timeout_s=None, partial=None
            ) from exc
        return data.decode("utf-8", "replace")


class ChatStream:
    """One streamed chat completion.

    ``async for chunk in stream`` yields each :class:`~gptoss_modal.stream.chunks.ChatChunk` as it
    arrives (the usage chunk too; ``[DONE]`` ends the iteration); ``await stream.collect()``
    reads to the end without yielding. ``stream.result`` holds everything received so far.
    Use it as ``async with`` (or call :meth:`aclose`) so the connection is released.
    """

    def __init__(self, client: Client, body: bytes, *, owns_client: bool = False) -> None:
        self.result = ChatResult()
        self.url = f"{client.base_url}/v1/chat/completions"
        self._client = client
        self._owns_client = owns_client
        self._body = body
        self._decoder = ChatChunkDecoder()
        self._response: aiohttp.ClientResponse | None = None
        self._finished = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[ChatChunk]:
        chunks = self.result.chunks
        yielded = len(chunks)
        failure: GptossModalError | None = None
        more = True
        while more:
            try:
                more = await self._step()
            except GptossModalError as exc:  # yield what came before the failure, then raise
                failure, more = exc, False
            if yielded < len(chunks):
                batch, yielded = chunks[yielded:], len(chunks)
                for chunk in batch:
                    yield chunk
        if failure is not None:
            raise failure

    async def collect(self) -> ChatResult:
        """Read the stream to ``[DONE]`` and return :attr:`result`."""
        while await self._step():
            pass
        return self.result

    async def aclose(self) -> None:
        """Release the connection (and the client, if this stream made its own)."""
        await self._end(completed=False)

    async def _end(self, *, completed: bool) -> None:
        """Stop reading; close the client too if this stream made it (``stream_chat()``)."""
        self._drop_response(completed=completed)
        if self._owns_client:
            await self._client.aclose()

    def _drop_response(self, *, completed: bool) -> None:
        self._finished = True
        if self._response is not None:
            if completed:
                self._response.release()  # read to [DONE]: the connection can be reused
            else:
                self._response.close()  # cut short: the rest of the body is still coming
            self._response = None

    async def _step(self) -> bool:
        """Send the request, or read once and parse what came; ``False`` once the stream ended."""
        if self._finished:
            return False
        try:
            response = self._response
            if response is None:
                await self._open()
                return True
            data = await response.content.readany()
            if not data:
                raise self._ended_early()
            now = self._client.clock()
            if self._decoder.feed(data, self.result.chunks, arrival=now):
                self.result.done = True
                await self._end(completed=True)
                return False
            return True
        except GptossModalError as exc:
            await self._end(completed=False)
            if (
                isinstance(exc, (StreamError, UpstreamError, TransportError))
                and exc.partial is None
            ):
                exc.partial = self.result
            raise
        except _LOWER_LEVEL_ERRORS as exc:
            await self._end(completed=False)
            raise _translate(
                exc,
                url=self.url,
                timeout_s=self._client.connect_timeout_s,
                stall_timeout_s=self._client.stall_timeout_s,
                partial=self.result,
            ) from exc
        except BaseException:  # cancelled: drop the connection before leaving
            self._drop_response(completed=False)
            raise

    async def _open(self) -> None:
        client = self._client
        limits = aiohttp.ClientTimeout(
            total=None, sock_connect=client.connect_timeout_s, sock_read=client.stall_timeout_s
        )
        self.result.started = client.clock()
        response = await client._http().post(self.url, data=self._body, timeout=limits)
        self.result.response_at = client.clock()
        if response.status != 200:
            body = await response.content.read(_ERROR_BODY_LIMIT_BYTES)
            response.release()
            raise _status_error(
                response.status, response.reason, body, self.url, client._credentials
            )
        content_type = response.headers.get("Content-Type", "")
        if not content_type.startswith("text/event-stream"):
            body = await response.content.read(_ERROR_BODY_LIMIT_BYTES)
            response.release()
            raise StreamError(
                f"{self.url} answered 200 with {content_type or 'no content type'} instead of "
                f"text/event-stream: {_preview(body)}"
            )
        self._response = response

    def _ended_early(self) -> IncompleteStreamError:
        discarded = self._decoder.close()
        tail = f"; an unfinished event was discarded: {_preview(discarded)}" if discarded else ""
        return IncompleteStreamError(
            f"the stream from {self.url} ended after {len(self.result.chunks)} chunks without "
            f"data: [DONE]{tail}",
            partial=self.result,
        )


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
