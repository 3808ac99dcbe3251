"""The public API is importable without the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

import gptoss_modal

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
        gptoss_modal.no_such_name  # type: ignore[attr-defined]  # noqa: B018


def test_all_names_are_exported() -> None:
    """Every name in __all__ exists on the package."""
    missing = [name for name in gptoss_modal.__all__ if not hasattr(gptoss_modal, name)]
    assert missing == []


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
