"""gptoss-modal: OpenAI's gpt-oss served by vLLM on Modal, tuned, secure, tested and measured.

The public API is re-exported here. Importing it loads no modal, aiohttp or vllm: the command
builder and the stream parsers are pure, so other tools can import them to launch vLLM anywhere.
The aiohttp client lives in ``gptoss_modal.stream.client``, the Modal app in
``gptoss_modal.app`` and the mock server in ``gptoss_modal.testing.mock_server``; import
those explicitly.
"""

import importlib
from typing import TYPE_CHECKING, Any

from gptoss_modal._exceptions import (
    AuthenticationError,
    BenchmarkError,
    ChunkParseError,
    CommandParseError,
    ConfigError,
    ConnectError,
    ConnectTimeout,
    GptossModalError,
    HealthTimeout,
    HTTPStatusError,
    IncompleteStreamError,
    PreflightError,
    SSEDecodeError,
    StallTimeout,
    StreamError,
    TimeoutError,
    TransportError,
    UpstreamError,
    VllmStartupError,
)

# --- serve config and command builder ---
from gptoss_modal.serve.command import build_vllm_command, parse_vllm_command, vllm_env
from gptoss_modal.serve.config import GPUSpec, ServeConfig, load_config

# --- streaming: SSE decoder, chunk parser, accumulator ---
# Loaded on first use (PEP 562): the chunk parser needs msgspec, which would more than double
# the import time of the builder for tools that only build commands.
_LAZY = {
    **dict.fromkeys(
        (
            "DONE",
            "ChatAccumulator",
            "ChatChunk",
            "ChatChunkDecoder",
            "ChatMessage",
            "ChatResult",
            "Choice",
            "Delta",
            "FunctionDelta",
            "StreamEnd",
            "ToolCall",
            "ToolCallDelta",
            "Usage",
            "parse_chat_chunk",
            "parse_chat_chunks",
        ),
        "gptoss_modal.stream.chunks",
    ),
    **dict.fromkeys(("ServerSentEvent", "SSEDecoder", "encode_event"), "gptoss_modal.stream.sse"),
}

if TYPE_CHECKING:
    from gptoss_modal.stream.chunks import (
        DONE,
        ChatAccumulator,
        ChatChunk,
        ChatChunkDecoder,
        ChatMessage,
        ChatResult,
        Choice,
        Delta,
        FunctionDelta,
        StreamEnd,
        ToolCall,
        ToolCallDelta,
        Usage,
        parse_chat_chunk,
        parse_chat_chunks,
    )
    from gptoss_modal.stream.sse import ServerSentEvent, SSEDecoder, encode_event


def __getattr__(name: str) -> Any:
    """Import a streaming name from its module the first time it is asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gptoss_modal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # next time, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "DONE",
    "AuthenticationError",
    "BenchmarkError",
    "ChatAccumulator",
    "ChatChunk",
    "ChatChunkDecoder",
    "ChatMessage",
    "ChatResult",
    "Choice",
    "ChunkParseError",
    "CommandParseError",
    "ConfigError",
    "ConnectError",
    "ConnectTimeout",
    "Delta",
    "FunctionDelta",
    "GPUSpec",
    "GptossModalError",
    "HTTPStatusError",
    "HealthTimeout",
    "IncompleteStreamError",
    "PreflightError",
    "SSEDecodeError",
    "SSEDecoder",
    "ServeConfig",
    "ServerSentEvent",
    "StallTimeout",
    "StreamEnd",
    "StreamError",
    "TimeoutError",
    "ToolCall",
    "ToolCallDelta",
    "TransportError",
    "UpstreamError",
    "Usage",
    "VllmStartupError",
    "__version__",
    "build_vllm_command",
    "encode_event",
    "load_config",
    "parse_chat_chunk",
    "parse_chat_chunks",
    "parse_vllm_command",
    "vllm_env",
]
