"""One streamed chat completion: :class:`ChatStream`, made by :meth:`Client.stream_chat`, and
the generic :class:`EventStream` it specialises (the Responses stream is its other one).

Sending: the request is sent on first use, again after a failure worth retrying before the
reply began (:mod:`gptoss_modal.stream._policy`), following redirects only within the server's
origin, all within the client's ``request_timeout_s``. Reading: one
:class:`~gptoss_modal.stream.decoder.ChatChunkDecoder` feed per network read; a watchdog (one
timer per stall period, not one per read) fails the read when no event came for
``stall_timeout_s``, so heartbeat comments or a trickle of bytes cannot hold a stream open.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, Self, TypeVar

import aiohttp

from gptoss_modal._exceptions import (
    GptossModalError,
    HTTPStatusError,
    IncompleteStreamError,
    StallTimeout,
    StreamError,
    TransportError,
    UpstreamError,
)
from gptoss_modal.stream._policy import (
    MAX_REDIRECTS,
    REDIRECT_STATUSES,
    redirect_target,
    retry_after_s,
    retry_delay_s,
    retryable,
)
from gptoss_modal.stream.accumulator import ChatResult
from gptoss_modal.stream.chunks import ChatChunk
from gptoss_modal.stream.decoder import ChatChunkDecoder
from gptoss_modal.stream.errors import ERROR_BODY_LIMIT_BYTES
from gptoss_modal.stream.errors import LOWER_LEVEL_ERRORS as _LOWER_LEVEL_ERRORS
from gptoss_modal.stream.errors import preview as _preview
from gptoss_modal.stream.errors import status_error as _status_error
from gptoss_modal.stream.errors import translate as _translate

if TYPE_CHECKING:
    from gptoss_modal.stream.client import Client

__all__ = ["ChatStream"]  # EventStream: the shared base, imported by the Responses stream

_E = TypeVar("_E")  # one decoded event: a chat chunk, a Responses event
_R = TypeVar("_R", bound="StreamResult[Any]")


class StreamResult(Protocol[_E]):
    """What the stream loop reads and stamps on a result: its events and its clock marks."""

    chunks: list[_E]
    done: bool
    started: float
    response_at: float | None


class EventDecoder(Protocol[_E]):
    """A sans-IO decoder: bytes in, events appended, ``True`` once the stream's end was read."""

    def feed(self, data: bytes, into: list[_E], *, arrival: float = 0.0) -> bool: ...

    def close(self) -> str: ...


class EventStream(Generic[_R, _E]):
    """One streamed request whose reply is a body of server-sent events, generic over its
    result type ``_R`` and event type ``_E``: sending, retries, the stall watchdog, the error
    mapping and partial results, written once for chat and Responses alike.

    ``async for event in stream`` yields each event as it arrives; ``await stream.collect()``
    reads to the end without yielding. ``stream.result`` holds everything received so far.
    Use it as ``async with`` (or call :meth:`aclose`) so the connection is released.
    """

    _path: ClassVar[str]  # the endpoint, below the client's base URL

    def __init__(
        self,
        client: Client,
        body: bytes,
        *,
        owns_client: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.result, self._decoder = self._start(client)
        # This request's own headers (e.g. the benchmark's Modal-Session-ID), beside the client's.
        self._headers = dict(headers) if headers else None
        self.url = f"{client.base_url}{self._path}"
        self._client = client
        self._owns_client = owns_client
        self._body = body
        self._response: aiohttp.ClientResponse | None = None
        self._finished = False
        # The stall watchdog: one timer per stall period, not per read. A read that adds chunks
        # stamps _progress_at; the timer, when due, fails the read if nothing came since.
        self._watchdog: asyncio.TimerHandle | None = None
        self._loop_time: Callable[[], float] = time.monotonic
        self._progress_at = 0.0
        self._reading = False
        self._retry_after: float | None = None  # what the last refused attempt's reply asked

    def _start(self, client: Client) -> tuple[_R, EventDecoder[_E]]:
        """An empty result and a decoder for this API's events (each subclass says which)."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> AsyncIterator[_E]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[_E]:
        chunks: list[_E] = self.result.chunks
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

    async def collect(self) -> _R:
        """Read the stream to its end (``[DONE]``, a terminal event) and return :attr:`result`."""
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
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
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
            self._reading = True
            data = await response.content.readany()
            self._reading = False
            if not data:
                raise self._ended_early()
            now = self._client.clock()
            chunks: list[_E] = self.result.chunks
            before = len(chunks)
            if self._decoder.feed(data, chunks, arrival=now):
                self.result.done = True
                await self._end(completed=True)
                return False
            if len(chunks) != before:
                self._progress_at = self._loop_time()
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
            raise self._translated(exc) from exc
        except (asyncio.CancelledError, Exception):  # cancelled, or a bug: drop the connection
            self._drop_response(completed=False)
            raise

    def _translated(self, exc: BaseException) -> GptossModalError:
        client = self._client
        return _translate(
            exc,
            url=self.url,
            connect_timeout_s=client.connect_timeout_s,
            timeout_s=client.request_timeout_s,
            stall_timeout_s=client.stall_timeout_s,
            partial=self.result,
        )

    async def _open(self) -> None:
        """Send the request, again after a failure worth retrying, until a stream begins."""
        client = self._client
        loop = asyncio.get_running_loop()
        limit = client.request_timeout_s
        deadline = None if limit is None else loop.time() + limit
        self.result.started = client.clock()
        retry = 0
        while True:
            try:
                response = await self._attempt(deadline)
            except GptossModalError as exc:
                if retry >= client.max_retries or not retryable(exc):
                    raise
                wait = retry_delay_s(retry, self._retry_after, random.random())  # noqa: S311  (jitter, not a secret)
                if deadline is not None and loop.time() + wait >= deadline:
                    raise
                await client.sleep(wait)
                retry += 1
                continue
            break
        self.result.response_at = client.clock()
        self._response = response
        if client.stall_timeout_s is not None:
            self._loop_time = loop.time
            self._progress_at = loop.time()
            self._watchdog = loop.call_at(
                self._progress_at + client.stall_timeout_s, self._check_stall
            )

    async def _attempt(self, deadline: float | None) -> aiohttp.ClientResponse:
        """One try: the response of a stream that began, or the typed error why not."""
        client = self._client
        stall = client.stall_timeout_s
        remaining = (
            None if deadline is None else max(deadline - asyncio.get_running_loop().time(), 0.0)
        )
        limits = aiohttp.ClientTimeout(total=remaining, sock_connect=client.connect_timeout_s)
        self._retry_after = None
        try:
            async with asyncio.timeout(stall) as waiting:  # no answer at all is a stall
                response = await self._post(limits)
                if response.status != 200:
                    body = await response.content.read(ERROR_BODY_LIMIT_BYTES)
                    response.release()
                    self._retry_after = retry_after_s(response.headers)
                    raise _status_error(
                        response.status, response.reason, body, self.url, client._credentials
                    )
                content_type = response.headers.get("Content-Type", "")
                if not content_type.startswith("text/event-stream"):
                    body = await response.content.read(ERROR_BODY_LIMIT_BYTES)
                    response.release()
                    raise StreamError(
                        f"{self.url} answered 200 with {content_type or 'no content type'} "
                        f"instead of text/event-stream: {_preview(body)}"
                    )
        except _LOWER_LEVEL_ERRORS as exc:
            if waiting.expired():
                raise StallTimeout(
                    f"no answer from {self.url} for {stall} s waiting for the reply",
                    url=self.url,
                    partial=self.result,
                ) from exc
            raise self._translated(exc) from exc
        return response

    async def _post(self, limits: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        """POST the body, following redirects within the server's origin (307 and 308 only)."""
        url = self.url
        http = self._client._http()
        for _ in range(MAX_REDIRECTS + 1):
            response = await http.post(
                url, data=self._body, headers=self._headers, timeout=limits, allow_redirects=False
            )
            if response.status not in REDIRECT_STATUSES:
                return response
            response.release()
            location = response.headers.get("Location")
            url = redirect_target(url, response.status, location, keeps_body=True)
        raise HTTPStatusError(
            f"{self.url} redirected more than {MAX_REDIRECTS} times",
            status=response.status,
            url=url,
        )

    def _check_stall(self) -> None:
        """The watchdog: fail the read when no event came for ``stall_timeout_s``."""
        self._watchdog = None
        stall = self._client.stall_timeout_s
        response = self._response
        if response is None or stall is None:
            return
        now = self._loop_time()
        if not self._reading:  # the caller holds the stream: its time does not count
            self._progress_at = now
        due = self._progress_at + stall
        if due > now:
            self._watchdog = asyncio.get_running_loop().call_at(due, self._check_stall)
            return
        received = len(self.result.chunks)
        where = f"after {received} chunks" if received else "waiting for the first chunk"
        response.content.set_exception(
            StallTimeout(
                f"no event from {self.url} for {stall} s {where} (bytes without an event, "
                "such as heartbeat comments, do not count)",
                url=self.url,
                partial=self.result,
            )
        )

    # What a body that closes before its end lacked, for the incomplete-stream error.
    _units = "events"
    _missing_end = "its end"

    def _ended_early(self) -> IncompleteStreamError:
        discarded = self._decoder.close()
        tail = f"; an unfinished event was discarded: {_preview(discarded)}" if discarded else ""
        return IncompleteStreamError(
            f"the stream from {self.url} ended after {len(self.result.chunks)} {self._units} "
            f"without {self._missing_end}{tail}",
            partial=self.result,
        )


class ChatStream(EventStream[ChatResult, ChatChunk]):
    """One streamed chat completion.

    ``async for chunk in stream`` yields each :class:`~gptoss_modal.stream.chunks.ChatChunk` as it
    arrives (the usage chunk too; ``[DONE]`` ends the iteration); ``await stream.collect()``
    reads to the end without yielding. ``stream.result`` holds everything received so far.
    Use it as ``async with`` (or call :meth:`aclose`) so the connection is released.
    """

    _path = "/v1/chat/completions"
    _units = "chunks"
    _missing_end = "data: [DONE]"

    def _start(self, client: Client) -> tuple[ChatResult, ChatChunkDecoder]:
        return ChatResult(), ChatChunkDecoder(max_event_chars=client.max_event_chars)
