"""The public API is importable without the heavy libraries."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import pytest

import gptoss_modal
from gptoss_modal import _exceptions, serve, stream

# msgspec too: the streaming names load on first use, so building commands stays light.
HEAVY = ("modal", "aiohttp", "vllm", "torch", "matplotlib", "openai", "httpx", "msgspec")


def test_import_loads_no_heavy_library() -> None:
    """`import gptoss_modal` in a fresh interpreter loads neither modal, aiohttp nor vllm."""
    code = f"import sys, gptoss_modal; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_streaming_names_load_on_first_use() -> None:
    """A lazily exported name resolves to its module's object, and unknown names still fail."""
    from gptoss_modal.stream.sse import SSEDecoder

    assert gptoss_modal.SSEDecoder is SSEDecoder
    assert "parse_chat_chunk" in dir(gptoss_modal)
    with pytest.raises(AttributeError, match="no_such_name"):
        gptoss_modal.no_such_name  # noqa: B018


def test_all_names_are_exported() -> None:
    """Every name in __all__ exists on the package."""
    missing = [name for name in gptoss_modal.__all__ if not hasattr(gptoss_modal, name)]
    assert missing == []


# The top-level names of the 0.1.0 layout: each must keep working.
NAMES_0_1_0 = [
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
    "TimeoutException",
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


def test_every_earlier_name_is_still_exported() -> None:
    """Each name the package exported before the subpackages existed is still in __all__."""
    assert [name for name in NAMES_0_1_0 if name not in gptoss_modal.__all__] == []


def test_all_is_built_from_the_subpackages_own_all() -> None:
    """The top-level __all__ is the errors', serve's and stream's __all__ and the version, once
    each."""
    parts = ["__version__", *_exceptions.__all__, *serve.__all__, *stream.__all__]
    assert gptoss_modal.__all__ == parts
    assert len(parts) == len(set(parts))


def test_top_level_names_are_the_subpackages_objects() -> None:
    """``gptoss_modal.X`` is the same object as ``gptoss_modal.serve.X`` / ``.stream.X``."""
    for package in (serve, stream):
        for name in package.__all__:
            assert getattr(gptoss_modal, name) is getattr(package, name), name


def test_the_version_is_the_installed_distributions() -> None:
    """__version__ and the package metadata (hatch reads _version.py) agree."""
    assert gptoss_modal.__version__ == importlib.metadata.version("gptoss-modal")


def test_every_error_derives_from_the_base() -> None:
    """All exception classes exported sit under GptossModalError."""
    errors = [
        getattr(gptoss_modal, name)
        for name in gptoss_modal.__all__
        if isinstance(getattr(gptoss_modal, name), type)
        and issubclass(getattr(gptoss_modal, name), BaseException)
    ]
    assert errors
    assert all(issubclass(e, gptoss_modal.GptossModalError) for e in errors)
