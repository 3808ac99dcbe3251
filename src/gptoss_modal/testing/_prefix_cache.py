"""The mock's prefix cache: how many of a prompt's tokens vLLM would find already computed.

vLLM's automatic prefix caching (on by default in the V1 engine) hashes a prompt's full blocks
of ``BLOCK_TOKENS`` tokens, each block's hash chained to its parent's, and reuses the longest
run of leading blocks it still holds; it always recomputes at least the prompt's last token, so
the hit is a multiple of the block size and below the prompt's length. Blocks are evicted least
recently used. The mock does the same over its fake tokenizer's pieces, laid out in the order
harmony renders a prompt (system preamble, the tools' developer message, then the messages),
so an agent conversation's later turns hit the blocks of the turns before them.

Pure; bounded: at most ``CACHE_BLOCKS`` block hashes are kept (1,048,576 tokens, about what
one H100's KV cache holds for gpt-oss-20b).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gptoss_modal.testing import _engine as engine

__all__ = [
    "BLOCK_TOKENS",
    "CACHE_BLOCKS",
    "NO_CACHE_HIT",
    "PrefixCache",
    "PromptCache",
    "block_hashes",
    "prompt_tokens_details",
    "stream_details_json",
]

BLOCK_TOKENS = 16  # vLLM's default --block-size on CUDA (tokens per KV-cache block)
CACHE_BLOCKS = 65_536  # block hashes kept (LRU): 1,048,576 tokens


def _prompt_tokens(messages: Sequence[dict[str, Any]], tools: Sequence[Any]) -> Iterator[str]:
    """The prompt as the fake tokenizer's tokens, as many as ``count_prompt_tokens`` counts."""
    for i in range(engine.PROMPT_OVERHEAD_TOKENS):
        yield f"<system:{i}>"
    for tool in tools:
        for i in range(engine.TOOL_OVERHEAD_TOKENS):
            yield f"<tool:{i}>"
        yield from engine.split_pieces(repr(tool))
    for message in messages:
        role = str(message.get("role"))
        for i in range(engine.MESSAGE_OVERHEAD_TOKENS):
            yield f"<{role}:{i}>"
        yield from engine.split_pieces(engine._content_text(message.get("content")))


def block_hashes(messages: Sequence[dict[str, Any]], tools: Sequence[Any] = ()) -> list[bytes]:
    """The chained hash of each full block of the prompt (a partial last block has none)."""
    hashes: list[bytes] = []
    parent = b""
    block = hashlib.blake2b(parent, digest_size=16)
    filled = 0
    for token in _prompt_tokens(messages, tools):
        block.update(token.encode() + b"\x00")
        filled += 1
        if filled == BLOCK_TOKENS:
            parent = block.digest()
            hashes.append(parent)
            block, filled = hashlib.blake2b(parent, digest_size=16), 0
    return hashes


@dataclass(frozen=True)
class PromptCache:
    """What the prefix cache did for one prompt: tokens found, and tokens newly written."""

    cached_tokens: int
    created_tokens: int  # full blocks computed and written by this prompt (0.33.0 reports it)


NO_CACHE_HIT = PromptCache(0, 0)


class PrefixCache:
    """The server's prefix cache: block hashes, least recently used first."""

    def __init__(self, capacity_blocks: int = CACHE_BLOCKS) -> None:
        self.capacity_blocks = capacity_blocks
        self._blocks: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def lookup_and_store(self, hashes: Sequence[bytes], prompt_tokens: int) -> PromptCache:
        """The hit for a prompt of ``prompt_tokens`` tokens with these block hashes, then keep
        its blocks (the most recently used)."""
        hit = 0
        for digest in hashes:
            if digest not in self._blocks:
                break
            hit += 1
        # vLLM recomputes at least the last prompt token: the hit stops a block short of it.
        usable = max(0, (prompt_tokens - 1) // BLOCK_TOKENS)
        cached = min(hit, usable) * BLOCK_TOKENS
        for digest in hashes:
            self._blocks[digest] = None
            self._blocks.move_to_end(digest)
        while len(self._blocks) > self.capacity_blocks:
            self._blocks.popitem(last=False)
        created = len(hashes) * BLOCK_TOKENS - cached
        return PromptCache(cached, max(0, created))


def prompt_tokens_details(
    vllm_version: str, cache: PromptCache, enabled: bool
) -> dict[str, Any] | None:
    """``usage.prompt_tokens_details`` as each version fills it under
    ``--enable-prompt-tokens-details`` (None: the field stays null, or unset in a stream).

    0.13.0 sets ``{"cached_tokens": N}`` only when N > 0; 0.33.0 always sets it, with the
    tokens this prompt wrote to the cache and (null) multimodal counts.
    """
    if not enabled:
        return None
    if vllm_version == "0.13.0":
        return {"cached_tokens": cache.cached_tokens} if cache.cached_tokens else None
    return {
        "cached_tokens": cache.cached_tokens,
        "created_cache_tokens": cache.created_tokens,
        "multimodal_tokens": None,
    }


def stream_details_json(details: dict[str, Any] | None) -> bytes:
    """The details as a stream's usage chunk writes them (``exclude_none``), or ``b""``."""
    if details is None:
        return b""
    return orjson.dumps({k: v for k, v in details.items() if v is not None})
