"""What comes back from vLLM: the SSE decoder, chat chunks, accumulators, requests, the client.

Layered from pure to I/O (each module imports only those above it)::

    sse          bytes in, server-sent events out (sans-IO, no dependency)
    request      the JSON body of a chat completion, checked (no dependency)
    chunks       events in, typed msgspec chunks out; what a chunk carries (msgspec)
    decoder      bytes in, typed chunks out: the two above fused (msgspec)
    accumulator  chunks folded into messages; one request's timings and decode speed
    errors       the one place where aiohttp's errors become ours (aiohttp; internal)
    chatstream   one streamed chat request: retries, redirects, the stall watchdog (aiohttp)
    client       the aiohttp client: health wait, metrics, streamed chat (aiohttp)

and the Responses API (``/v1/responses``) beside the chat path, layered the same way::

    responses_request      the JSON body of a Responses request, checked (no dependency)
    responses              events in, typed Responses events out (msgspec)
    responses_decoder      bytes in, typed events out (msgspec)
    responses_accumulator  events folded into the response; one request's timings
    responses_client       the streamed request on the client (aiohttp)

Every public name is importable from here and loads its module on first use (PEP 562), so
``import gptoss_modal.stream`` costs nothing until a name is asked for.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for mypy; a unit test checks it names exactly __all__, each from its home
    from gptoss_modal.stream.accumulator import (
        ChatAccumulator,
        ChatMessage,
        ChatResult,
        ToolCall,
        decode_tokens_per_s,
        time_per_output_token_s,
    )
    from gptoss_modal.stream.chatstream import ChatStream
    from gptoss_modal.stream.chunks import (
        CHUNK_CHOICES,
        CHUNK_CONTENT,
        CHUNK_OUTPUT,
        DONE,
        ChatChunk,
        Choice,
        Delta,
        FunctionDelta,
        StreamEnd,
        ToolCallDelta,
        Usage,
        parse_chat_chunk,
        parse_chat_chunks,
    )
    from gptoss_modal.stream.client import (
        DEFAULT_CONNECT_TIMEOUT_S,
        DEFAULT_HEALTH_TIMEOUT_S,
        DEFAULT_MAX_RETRIES,
        DEFAULT_STALL_TIMEOUT_S,
        Client,
        HealthProgress,
        stream_chat,
        wait_healthy,
        worth_waiting,
    )
    from gptoss_modal.stream.decoder import ChatChunkDecoder
    from gptoss_modal.stream.request import (
        HARMONY_EFFORTS,
        REASONING_EFFORTS,
        build_chat_request,
        reasoning_efforts,
    )
    from gptoss_modal.stream.responses import (
        RESPONSE_TERMINAL_TYPES,
        AnyResponseEvent,
        ContentPart,
        ContentPartEvent,
        ErrorEvent,
        FunctionCallArgumentsDelta,
        FunctionCallArgumentsDone,
        OutputItem,
        OutputItemEvent,
        OutputTextDelta,
        OutputTextDone,
        ReasoningTextDelta,
        ReasoningTextDone,
        ResponseEvent,
        ResponseLifecycleEvent,
        ResponseObject,
        ResponseUsage,
        ToolCallArgumentsDelta,
        ToolCallArgumentsDone,
        ToolCallStatusEvent,
        UnknownEvent,
        parse_response_event,
        parse_response_events,
    )
    from gptoss_modal.stream.responses_accumulator import (
        BuiltinToolCall,
        ResponseAccumulator,
        ResponseOutput,
        ResponseResult,
    )
    from gptoss_modal.stream.responses_client import (
        ResponseStream,
        stream_response,
    )
    from gptoss_modal.stream.responses_decoder import (
        ResponseEventDecoder,
    )
    from gptoss_modal.stream.responses_request import (
        build_response_request,
        response_tools,
    )
    from gptoss_modal.stream.sse import (
        DEFAULT_MAX_EVENT_CHARS,
        ServerSentEvent,
        SSEDecoder,
        encode_event,
    )

__all__ = [
    "CHUNK_CHOICES",
    "CHUNK_CONTENT",
    "CHUNK_OUTPUT",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "DEFAULT_HEALTH_TIMEOUT_S",
    "DEFAULT_MAX_EVENT_CHARS",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_STALL_TIMEOUT_S",
    "DONE",
    "HARMONY_EFFORTS",
    "REASONING_EFFORTS",
    "RESPONSE_TERMINAL_TYPES",
    "AnyResponseEvent",
    "BuiltinToolCall",
    "ChatAccumulator",
    "ChatChunk",
    "ChatChunkDecoder",
    "ChatMessage",
    "ChatResult",
    "ChatStream",
    "Choice",
    "Client",
    "ContentPart",
    "ContentPartEvent",
    "Delta",
    "ErrorEvent",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "FunctionDelta",
    "HealthProgress",
    "OutputItem",
    "OutputItemEvent",
    "OutputTextDelta",
    "OutputTextDone",
    "ReasoningTextDelta",
    "ReasoningTextDone",
    "ResponseAccumulator",
    "ResponseEvent",
    "ResponseEventDecoder",
    "ResponseLifecycleEvent",
    "ResponseObject",
    "ResponseOutput",
    "ResponseResult",
    "ResponseStream",
    "ResponseUsage",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamEnd",
    "ToolCall",
    "ToolCallArgumentsDelta",
    "ToolCallArgumentsDone",
    "ToolCallDelta",
    "ToolCallStatusEvent",
    "UnknownEvent",
    "Usage",
    "build_chat_request",
    "build_response_request",
    "decode_tokens_per_s",
    "encode_event",
    "parse_chat_chunk",
    "parse_chat_chunks",
    "parse_response_event",
    "parse_response_events",
    "reasoning_efforts",
    "response_tools",
    "stream_chat",
    "stream_response",
    "time_per_output_token_s",
    "wait_healthy",
    "worth_waiting",
]

# Where the lazy lookup searches, lightest first: a name found early never loads aiohttp.
SUBMODULES = (
    "sse",
    "request",
    "responses_request",
    "chunks",
    "decoder",
    "accumulator",
    "responses",
    "responses_decoder",
    "responses_accumulator",
    "chatstream",
    "client",
    "responses_client",
)


def __getattr__(name: str) -> Any:
    """Import a public name from its module the first time it is asked for."""
    if name in __all__:
        for submodule in SUBMODULES:
            module = importlib.import_module(f"{__name__}.{submodule}")
            if name in module.__all__:
                value = getattr(module, name)
                globals()[name] = value  # next time, a plain attribute
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
