"""One streamed Responses API request: :class:`ResponseStream`, made by
:meth:`Client.stream_response <gptoss_modal.stream.client.Client.stream_response>` or
:func:`stream_response`.

It is an :class:`~gptoss_modal.stream.chatstream.EventStream`, as the chat stream is, with
another URL, decoder and result,
so sending, the health wait, the error mapping (one place, :mod:`gptoss_modal.stream.errors`),
stall limits and partial results are the chat path's own, not a copy. What differs: the stream
ends at the terminal event (there is no ``[DONE]``), a body that closes before it raises
:class:`~gptoss_modal.IncompleteStreamError` with the partial :class:`ResponseResult`, and an
in-stream error raises :class:`~gptoss_modal.UpstreamError` with vLLM's message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from gptoss_modal.stream.chatstream import EventStream
from gptoss_modal.stream.client import (
    DEFAULT_CONNECT_TIMEOUT_S,
    DEFAULT_STALL_TIMEOUT_S,
    Client,
)
from gptoss_modal.stream.responses import AnyResponseEvent
from gptoss_modal.stream.responses_accumulator import ResponseResult
from gptoss_modal.stream.responses_decoder import ResponseEventDecoder
from gptoss_modal.stream.responses_request import build_response_request

__all__ = ["ResponseStream", "stream_response"]

_json_encode = msgspec.json.Encoder().encode


class ResponseStream(EventStream[ResponseResult, AnyResponseEvent]):
    """One streamed Responses request.

    ``async for event in stream`` yields each typed event as it arrives (the terminal event
    ends the iteration); ``await stream.collect()`` reads to the end without yielding.
    ``stream.result`` is the :class:`ResponseResult` so far. Use it as ``async with``.
    """

    _path = "/v1/responses"
    _missing_end = "a terminal event (response.completed or response.incomplete)"

    def _start(self, client: Client) -> tuple[ResponseResult, ResponseEventDecoder]:
        return ResponseResult(), ResponseEventDecoder(max_event_chars=client.max_event_chars)


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
