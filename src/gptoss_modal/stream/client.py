"""An async client for vLLM's OpenAI-compatible server, on aiohttp: health and streamed chat.

- :func:`wait_healthy` / :meth:`Client.wait_healthy` poll ``/health`` with backoff through a
  cold start: a refused connection, a timeout, 503 and proxy errors mean "not yet"; 401, 403 and
  404 (the URL or key is wrong), a host that does not resolve and a failed TLS handshake or
  certificate raise at once (:func:`worth_waiting` tells them apart). Progress goes to a
  callback.
- :func:`stream_chat` / :meth:`Client.stream_chat` post ``/v1/chat/completions`` with
  ``stream: true`` and return a :class:`ChatStream`: iterate it for typed chunks as they
  arrive, or ``await stream.collect()`` (the cheapest way to run many streams at once). Either
  way ``stream.result`` is a :class:`~gptoss_modal.stream.chunks.ChatResult` with every chunk, its
  arrival time (one ``time.perf_counter()`` stamp per network read, taken before parsing), the
  timings and the accumulated message.
- Errors are ours (see :mod:`gptoss_modal._exceptions`). aiohttp's, asyncio's and the OS's
  errors are translated in one place, :func:`_translate`, with ``raise ... from exc``; errors
  raised after the reply started carry the partial :class:`ChatResult` as ``partial``.

The decode path does one :class:`~gptoss_modal.stream.chunks.ChatChunkDecoder` feed per network
read and one ``msgspec`` decode per chunk: no per-chunk pydantic objects, no per-chunk timer or
task.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import msgspec
import yarl

from gptoss_modal._exceptions import (
    AuthenticationError,
    ConfigError,
    ConnectError,
    ConnectTimeout,
    GptossModalError,
    HealthTimeout,
    HTTPStatusError,
    IncompleteStreamError,
    StallTimeout,
    StreamError,
    TimeoutError,
    TransportError,
    UpstreamError,
)
from gptoss_modal.stream.chunks import ChatChunk, ChatChunkDecoder, ChatResult

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_HEALTH_TIMEOUT_S",
    "DEFAULT_STALL_TIMEOUT_S",
    "REASONING_EFFORTS",
    "ChatStream",
    "Client",
    "HealthProgress",
    "build_chat_request",
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
REASONING_EFFORTS: Final = ("low", "medium", "high")  # what vLLM 0.13.0 accepts
_ERROR_BODY_LIMIT_BYTES: Final = 64 * 1024
METRICS_BODY_LIMIT_BYTES: Final = 16 * 1024 * 1024  # vLLM's /metrics is ~100 KB
_PREVIEW_CHARS: Final = 300
# /health answers that mean "the URL or the credentials are wrong", not "still starting".
_FATAL_HEALTH_STATUSES: Final = frozenset({400, 401, 403, 404, 405})

# Everything a request can raise from below us; _translate turns it into our errors.
_LOWER_LEVEL_ERRORS: Final = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
# Failures to connect that waiting does not fix: the host does not resolve, or TLS fails (a
# self-signed or expired certificate, a wrong host name, https:// to a plain-HTTP port).
_PERMANENT_CONNECT_ERRORS: Final = (aiohttp.ClientConnectorDNSError, aiohttp.ClientSSLError)

_json_encode = msgspec.json.Encoder().encode
_json_decode = msgspec.json.Decoder().decode


@dataclass(frozen=True, slots=True)
class HealthProgress:
    """Where a :func:`wait_healthy` is: seconds since it started, checks made, the last answer."""

    elapsed_s: float
    attempts: int
    last_status: str
    healthy: bool


def build_chat_request(
    messages: str | Sequence[Mapping[str, Any]],
    *,
    system: str | None = None,
    model: str | None = None,
    reasoning_effort: str | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    max_tokens: int | None = None,
    continuous_usage: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a streamed chat completion request.

    ``messages`` is a list of OpenAI chat messages, or a string for one user message; ``system``
    prepends a system message. Usage is always requested (``stream_options.include_usage``);
    ``continuous_usage`` asks vLLM to put the running usage on every chunk. ``extra`` is merged
    last (``ignore_eos``, ``seed``, ``temperature``, ...). Raises :class:`ConfigError` for a
    ``reasoning_effort`` vLLM would reject or an empty message list.
    """
    if isinstance(messages, str):
        chat: list[Mapping[str, Any]] = [{"role": "user", "content": messages}]
    else:
        chat = list(messages)
    if system is not None:
        chat.insert(0, {"role": "system", "content": system})
    if not chat:
        raise ConfigError("messages", [], "at least one chat message")
    if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
        raise ConfigError("reasoning_effort", reasoning_effort, "one of low, medium, high")
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError("max_tokens", max_tokens, "a positive number of tokens")
    stream_options: dict[str, bool] = {"include_usage": True}
    if continuous_usage:
        stream_options["continuous_usage_stats"] = True
    body: dict[str, Any] = {"messages": chat, "stream": True, "stream_options": stream_options}
    if model is not None:
        body["model"] = model
    if reasoning_effort is not None:
        body["reasoning_effort"] = reasoning_effort
    if tools:
        body["tools"] = list(tools)
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if extra:
        body.update(extra)
    return body


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
    ) -> HealthProgress:
        """Poll ``/health`` until it answers 200, for at most ``timeout_s`` seconds.

        Checks once even with ``timeout_s=0``. Waits 0.25 s after the first failed check, 1.5x
        longer after each next one, at most 5 s. Calls ``on_progress`` after every check.
        Raises :class:`HealthTimeout` (with the last status) when time runs out;
        :class:`AuthenticationError` / :class:`HTTPStatusError` at once for 401, 403, 404; and
        :class:`ConnectError` at once when the host does not resolve or TLS fails.
        """
        url = f"{self.base_url}/health"
        start = self.clock()
        delay = HEALTH_FIRST_DELAY_S
        attempts = 0
        while True:
            attempts += 1
            remaining = timeout_s - (self.clock() - start)
            probe = min(probe_timeout_s, max(remaining, HEALTH_MIN_PROBE_S))
            status, healthy = await self._check_health(url, probe)
            progress = HealthProgress(self.clock() - start, attempts, status, healthy)
            if on_progress is not None:
                on_progress(progress)
            if healthy:
                return progress
            remaining = timeout_s - progress.elapsed_s
            if remaining <= 0:
                checks = "1 check" if attempts == 1 else f"{attempts} checks"
                raise HealthTimeout(
                    f"{url} was not healthy after {progress.elapsed_s:.1f} s ({checks}); "
                    f"last: {status}",
                    url=url,
                    last_status=status,
                )
            await self.sleep(min(delay, remaining))
            delay = min(delay * HEALTH_BACKOFF, HEALTH_MAX_DELAY_S)

    async def _check_health(self, url: str, probe_s: float) -> tuple[str, bool]:
        """One ``GET /health``: (what it answered, whether that is healthy)."""
        limits = aiohttp.ClientTimeout(total=probe_s, sock_connect=self.connect_timeout_s)
        try:
            async with self._http().get(url, timeout=limits, allow_redirects=False) as response:
                if response.status == 200:
                    return "200 OK", True
                body = await response.content.read(_ERROR_BODY_LIMIT_BYTES)
        except _LOWER_LEVEL_ERRORS as exc:
            error = _translate(exc, url=url, timeout_s=probe_s, stall_timeout_s=None, partial=None)
            if worth_waiting(error):
                return str(error), False  # not up yet
            raise error from exc
        if response.status in _FATAL_HEALTH_STATUSES:
            raise _status_error(response.status, response.reason, body, url, self._credentials)
        return f"HTTP {response.status} {response.reason or ''}".rstrip(), False

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
    ) -> ChatStream:
        """Start a streamed chat completion (the request is sent on first use).

        The arguments are those of :func:`build_chat_request`; ``model`` defaults to the
        client's (vLLM serves its only model when none is named).
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
        :class:`ConnectError`, :class:`TimeoutError`, ...), and :class:`StreamError` for a body
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


def worth_waiting(error: BaseException) -> bool:
    """Whether a failed request may succeed once the server has started: a refused or dropped
    connection or a timeout, but not a host that does not resolve or a failed TLS handshake."""
    return isinstance(error, (ConnectError, TimeoutError)) and not isinstance(
        error.__cause__, _PERMANENT_CONNECT_ERRORS
    )


def _translate(
    exc: BaseException,
    *,
    url: str,
    timeout_s: float | None,
    stall_timeout_s: float | None,
    partial: ChatResult | None,
) -> GptossModalError:
    """The one place where aiohttp's, asyncio's and the OS's errors become ours.

    ``partial`` is the result so far when the reply had started; a connection lost after that
    is an incomplete stream, before it a failure to connect. The error's ``__cause__`` is
    ``exc`` already (as ``raise ... from exc`` sets it), so :func:`worth_waiting` can tell.
    """
    error = _translated(exc, url, timeout_s, stall_timeout_s, partial)
    error.__cause__ = exc
    return error


def _translated(
    exc: BaseException,
    url: str,
    timeout_s: float | None,
    stall_timeout_s: float | None,
    partial: ChatResult | None,
) -> GptossModalError:
    receiving = partial is not None and partial.response_at is not None
    received = len(partial.chunks) if partial is not None else 0
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(f"connecting to {url} took longer than {timeout_s} s", url=url)
    if isinstance(exc, aiohttp.SocketTimeoutError):
        where = f"after {received} chunks" if received else "waiting for the reply"
        return StallTimeout(
            f"no bytes from {url} for {stall_timeout_s} s {where}", url=url, partial=partial
        )
    if isinstance(exc, asyncio.TimeoutError):  # a request's total time limit
        return TimeoutError(f"{url} did not answer within {timeout_s} s", url=url, partial=partial)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return ConnectError(
            f"cannot resolve the host {exc.host!r} of {url} ({reason}): check the URL", url=url
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):  # the error's own text
        return ConnectError(
            f"the TLS certificate of {url} was rejected: {_text(exc.certificate_error)} (for a "
            "private CA, point SSL_CERT_FILE at its certificate)",
            url=url,
        )
    if isinstance(exc, aiohttp.ClientSSLError):  # an SSL error's errno is not an OS errno
        return ConnectError(f"the TLS handshake with {url} failed: {_text(exc.os_error)}", url=url)
    if isinstance(exc, aiohttp.ClientConnectorError):
        cause = exc.os_error
        reason = os.strerror(cause.errno) if cause.errno else str(cause) or type(cause).__name__
        return ConnectError(f"cannot connect to {url}: {reason}", url=url)
    if receiving and isinstance(
        exc, (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, OSError)
    ):
        return IncompleteStreamError(
            f"the connection to {url} broke after {received} chunks, before data: [DONE] "
            f"({type(exc).__name__}: {exc})",
            partial=partial,
        )
    if isinstance(exc, (aiohttp.ClientConnectionError, OSError)):
        return ConnectError(f"{url} closed the connection before answering ({exc})", url=url)
    return TransportError(
        f"request to {url} failed: {type(exc).__name__}: {exc}", url=url, partial=partial
    )


def _text(exc: BaseException) -> str:
    """An exception's own message, or its type when it has none."""
    return str(exc) or type(exc).__name__


@dataclass(frozen=True, slots=True)
class _Credentials:
    """Which credentials a client sends (never their values), for the 401 message."""

    api_key: bool
    proxy_auth: bool

    def rejected(self) -> str:
        if self.api_key and self.proxy_auth:
            return "the API key and the Modal-Key/Modal-Secret headers sent were rejected"
        if self.api_key:
            return "the API key sent was rejected"
        if self.proxy_auth:
            return "the Modal-Key/Modal-Secret headers sent were rejected"
        return "no API key and no Modal-Key/Modal-Secret headers were sent"


def _status_error(
    status: int, reason: str | None, body: bytes, url: str, credentials: _Credentials
) -> HTTPStatusError:
    """The error for a non-2xx reply, with vLLM's error object when the body has one."""
    text = body.decode("utf-8", "replace")
    error: dict[str, Any] | None = None
    try:
        decoded = _json_decode(body) if body else None
    except msgspec.DecodeError:  # not JSON: keep the text
        decoded = None
    if isinstance(decoded, dict):
        inner = decoded.get("error")
        if isinstance(inner, dict):
            error = inner
        elif decoded.get("object") == "error":  # older vLLM
            error = decoded
    head = f"{url} answered {status} {reason or ''}".rstrip()
    if status == 401:
        return AuthenticationError(
            f"{head}: {credentials.rejected()}; send the key vLLM was started with (vLLM "
            "--api-key or VLLM_API_KEY) or, when the Modal app uses proxy auth, a proxy auth "
            "token as the Modal-Key and Modal-Secret headers",
            status=status,
            body=text,
            error=error,
            url=url,
        )
    detail = str(error.get("message")) if error and error.get("message") else _preview(body)
    return HTTPStatusError(f"{head}: {detail}", status=status, body=text, error=error, url=url)


def _preview(data: bytes | str) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return repr(text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "...")


async def wait_healthy(
    base_url: str,
    *,
    timeout_s: float = DEFAULT_HEALTH_TIMEOUT_S,
    on_progress: Callable[[HealthProgress], None] | None = None,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    connect_timeout_s: float | None = DEFAULT_CONNECT_TIMEOUT_S,
    probe_timeout_s: float = HEALTH_PROBE_TIMEOUT_S,
) -> HealthProgress:
    """Poll ``base_url``'s ``/health`` until it answers 200 (see :meth:`Client.wait_healthy`)."""
    async with Client(
        base_url, api_key=api_key, headers=headers, connect_timeout_s=connect_timeout_s
    ) as client:
        return await client.wait_healthy(
            timeout_s=timeout_s, on_progress=on_progress, probe_timeout_s=probe_timeout_s
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
