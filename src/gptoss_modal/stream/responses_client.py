"""One streamed Responses API request: :class:`ResponseStream`, made by
:meth:`Client.stream_response <gptoss_modal.stream.client.Client.stream_response>` or
:func:`stream_response`.

It is a :class:`~gptoss_modal.stream.client.ChatStream` with another URL, decoder and result,
so sending, the health wait, the error mapping (one place, :mod:`gptoss_modal.stream.errors`),
stall limits and partial results are the chat path's own, not a copy. What differs: the stream
ends at the terminal event (there is no ``[DONE]``), a body that closes before it raises
:class:`~gptoss_modal.IncompleteStreamError` with the partial :class:`ResponseResult`, and an
in-stream error raises :class:`~gptoss_modal.UpstreamError` with vLLM's message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import msgspec

from gptoss_modal._exceptions import IncompleteStreamError
from gptoss_modal.stream.client import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_STALL_TIMEOUT_S,
    ChatStream,
    Client,
)
from gptoss_modal.stream.errors import preview as _preview
from gptoss_modal.stream.responses import AnyResponseEvent
from gptoss_modal.stream.responses_accumulator import ResponseResult
from gptoss_modal.stream.responses_decoder import ResponseEventDecoder
from gptoss_modal.stream.responses_request import build_response_request

__all__ = ["ResponseStream", "stream_response"]

_json_encode = msgspec.json.Encoder().encode


class ResponseStream(ChatStream):
    """One streamed Responses request.

    ``async for event in stream`` yields each typed event as it arrives (the terminal event
    ends the iteration); ``await stream.collect()`` reads to the end without yielding.
    ``stream.result`` is the :class:`ResponseResult` so far. Use it as ``async with``.
    """

    # The chat stream's loop reads and fills these by name; here they hold Responses types.
    result: ResponseResult  # type: ignore[assignment]  # the same interface, other events
    _decoder: ResponseEventDecoder  # the same interface as the chat decoder

    def __init__(
        self,
        client: Client,
        body: bytes,
        *,
        owns_client: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(client, body, owns_client=owns_client, headers=headers)
        self.result = ResponseResult()
        self.url = f"{client.base_url}/v1/responses"
        self._decoder = ResponseEventDecoder(max_event_chars=client.max_event_chars)

    def __aiter__(self) -> AsyncIterator[AnyResponseEvent]:  # type: ignore[override]  # events
        return self._iterate()  # type: ignore[return-value]  # yields result.chunks' items

    async def collect(self) -> ResponseResult:  # type: ignore[override]  # its own result
        """Read the stream to its terminal event and return :attr:`result`."""
        while await self._step():
            pass
        return self.result

    def _ended_early(self) -> IncompleteStreamError:
        discarded = self._decoder.close()
        tail = f"; an unfinished event was discarded: {_preview(discarded)}" if discarded else ""
        return IncompleteStreamError(
            f"the stream from {self.url} ended after {len(self.result.chunks)} events without "
            f"a terminal event (response.completed or response.incomplete){tail}",
            partial=self.result,
        )


def new_response_stream(
    client: Client,
    body: dict[str, Any],
    *,
    owns: bool,
    headers: Mapping[str, str] | None = None,
) -> ResponseStream:
    """The stream for ``body`` on ``client`` (what :meth:`Client.stream_response` returns)."""
    return ResponseStream(client, _json_encode(body), owns_client=owns, headers=headers)


def stream_response(
    base_url: str,
    input: str | Sequence[Mapping[str, Any]],
    *,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    connect_timeout_s: float | None = DEFAULT_CONNECT_TIMEOUT_S,
    stall_timeout_s: float | None = DEFAULT_STALL_TIMEOUT_S,
    **options: Any,
) -> ResponseStream:
    """One streamed Responses request on its own connection (see :meth:`Client.stream_response`).

    ``options`` are those of :func:`build_response_request`. For many requests, share a
    :class:`Client` instead.
    """
    client = Client(
        base_url,
        api_key=api_key,
        headers=headers,
        connect_timeout_s=connect_timeout_s,
        stall_timeout_s=stall_timeout_s,
    )
    return new_response_stream(client, build_response_request(input, **options), owns=True)
