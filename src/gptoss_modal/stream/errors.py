"""The one place where aiohttp's, asyncio's and the OS's errors, and error replies, become ours.

:func:`translate` maps what a request raised from below us (:data:`LOWER_LEVEL_ERRORS`) to our
exceptions (the caller raises it ``from exc``); :func:`status_error` maps a non-2xx reply, with
vLLM's error JSON when the body has one. Nothing else in the package catches aiohttp's errors to
convert them. (A malformed event becomes a ``ChunkParseError`` in
:mod:`gptoss_modal.stream.chunks`, which must load without aiohttp.)

Nothing here is public API: the client uses it.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import aiohttp
import msgspec

from gptoss_modal._exceptions import (
    AuthenticationError,
    ConnectError,
    ConnectTimeout,
    GptossModalError,
    HTTPStatusError,
    IncompleteStreamError,
    StallTimeout,
    TimeoutException,
    TransportError,
)

if TYPE_CHECKING:
    from collections.abc import Sized


class _Received(Protocol):
    """What the mapping reads of a partial result (a chat or a Responses one)."""

    @property
    def chunks(self) -> Sized: ...

    @property
    def response_at(self) -> float | None: ...


__all__: list[str] = []  # internal to the stream package

# Everything a request can raise from below us; translate turns it into our errors.
LOWER_LEVEL_ERRORS: Final = (aiohttp.ClientError, asyncio.TimeoutError, OSError)
# Failures to connect that waiting does not fix: the host does not resolve, or TLS fails (a
# self-signed or expired certificate, a wrong host name, https:// to a plain-HTTP port).
PERMANENT_CONNECT_ERRORS: Final = (aiohttp.ClientConnectorDNSError, aiohttp.ClientSSLError)
ERROR_BODY_LIMIT_BYTES: Final = 64 * 1024  # how much of an error reply is read
_PREVIEW_CHARS: Final = 300  # how much of a reply an error message quotes
_JSON_DECODER: Final = msgspec.json.Decoder()


def translate(
    exc: BaseException,
    *,
    url: str,
    connect_timeout_s: float | None,
    timeout_s: float | None,
    stall_timeout_s: float | None,
    partial: _Received | None,
) -> GptossModalError:
    """The one place where aiohttp's, asyncio's and the OS's errors become ours.

    ``connect_timeout_s`` is the limit on connecting, ``timeout_s`` the one on the whole
    request and ``stall_timeout_s`` the one on a silent socket, each named in its error.
    ``partial`` is the result so far when the reply had started; a connection lost after that
    is an incomplete stream, before it a failure to connect. The error's ``__cause__`` is
    ``exc`` already (as ``raise ... from exc`` sets it), so ``worth_waiting`` can tell.
    """
    error = _translated(exc, url, (connect_timeout_s, timeout_s, stall_timeout_s), partial)
    error.__cause__ = exc
    return error


def _translated(
    exc: BaseException,
    url: str,
    limits_s: tuple[float | None, float | None, float | None],
    partial: _Received | None,
) -> GptossModalError:
    connect_s, total_s, stall_s = limits_s
    receiving = partial is not None and partial.response_at is not None
    received = len(partial.chunks) if partial is not None else 0
    where = f"after {received} chunks" if received else "waiting for the reply"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectTimeout(f"connecting to {url} took longer than {connect_s} s", url=url)
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return StallTimeout(
            f"no bytes from {url} for {stall_s} s {where}", url=url, partial=partial
        )
    if isinstance(exc, asyncio.TimeoutError):  # a request's total time limit
        return TimeoutException(
            f"the request to {url} took longer than its {total_s} s limit, {where}",
            url=url,
            partial=partial,
        )
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
class Credentials:
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


def status_error(
    status: int, reason: str | None, body: bytes, url: str, credentials: Credentials
) -> HTTPStatusError:
    """The error for a non-2xx reply, with vLLM's error object when the body has one."""
    text = body.decode("utf-8", "replace")
    error: dict[str, Any] | None = None
    try:
        decoded = _JSON_DECODER.decode(body) if body else None
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
    detail = str(error.get("message")) if error and error.get("message") else preview(body)
    return HTTPStatusError(f"{head}: {detail}", status=status, body=text, error=error, url=url)


def preview(data: bytes | str) -> str:
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    return repr(text if len(text) <= _PREVIEW_CHARS else text[:_PREVIEW_CHARS] + "...")
