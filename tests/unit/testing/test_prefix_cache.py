"""The mock's prefix cache: block-sized hits that grow turn by turn in an agent conversation,
a bounded LRU, and the usage each version reports under --enable-prompt-tokens-details."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal.serve.options import VLLM_VERSIONS
from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing._prefix_cache import (
    BLOCK_TOKENS,
    PrefixCache,
    block_hashes,
    prompt_tokens_details,
)
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

TEXT = st.text(alphabet="abc de.", max_size=200)


def conversation(turns: int) -> list[dict[str, Any]]:
    """An agent conversation of ``turns`` user/tool rounds."""
    out: list[dict[str, Any]] = [{"role": "user", "content": "Plan a trip to Paris for me"}]
    for i in range(turns - 1):
        out.append({"role": "assistant", "content": f"calling the tool, round {i}"})
        out.append({"role": "tool", "content": f"result {i}: " + "sunny and warm " * 5})
    return out


@given(st.lists(st.fixed_dictionaries({"role": st.just("user"), "content": TEXT}), max_size=5))
def test_blocks_cover_the_prompts_full_blocks(messages: list[dict[str, Any]]) -> None:
    """A prompt has one hash per full block of its counted tokens (the partial block none)."""
    tokens = engine.count_prompt_tokens(messages)
    assert len(block_hashes(messages)) == tokens // BLOCK_TOKENS


@given(TEXT, TEXT)
def test_a_shared_prefix_shares_its_blocks_and_a_change_breaks_the_chain(a: str, b: str) -> None:
    """Two prompts share the hashes of their common leading blocks; a changed first message
    changes every block from the one holding the change (chained hashes)."""
    first = [{"role": "user", "content": a}]
    longer = block_hashes([*first, {"role": "user", "content": b}])
    short = block_hashes(first)
    assert longer[: len(short)] == short
    changed = block_hashes([{"role": "user", "content": a + " x"}, {"role": "user", "content": b}])
    changed_at = (engine.PROMPT_OVERHEAD_TOKENS + 4 + engine.count_text_tokens(a)) // BLOCK_TOKENS
    assert changed[changed_at:] != longer[changed_at:] or not longer[changed_at:]


def test_an_agent_conversations_later_turns_hit_more() -> None:
    """Each turn of a growing conversation finds the previous turns' blocks: the hit grows,
    is a multiple of the block size and stays below the prompt's length."""
    cache = PrefixCache()
    hits = []
    for turns in range(1, 6):
        messages = conversation(turns)
        tokens = engine.count_prompt_tokens(messages)
        hit = cache.lookup_and_store(block_hashes(messages), tokens)
        assert hit.cached_tokens % BLOCK_TOKENS == 0
        assert hit.cached_tokens < tokens
        assert hit.cached_tokens + hit.created_tokens == tokens // BLOCK_TOKENS * BLOCK_TOKENS
        hits.append(hit.cached_tokens)
    assert hits[0] == 0
    assert hits == sorted(hits)
    assert hits[-1] > hits[1] > 0


def test_the_whole_prompt_cached_still_recomputes_its_last_token() -> None:
    """A prompt seen before whose length is a multiple of the block size hits one block less."""
    cache = PrefixCache()
    hashes = [bytes([i]) for i in range(4)]
    cache.lookup_and_store(hashes, 4 * BLOCK_TOKENS)
    assert cache.lookup_and_store(hashes, 4 * BLOCK_TOKENS).cached_tokens == 3 * BLOCK_TOKENS
    assert cache.lookup_and_store(hashes, 4 * BLOCK_TOKENS + 5).cached_tokens == 4 * BLOCK_TOKENS


def test_the_cache_is_bounded_and_evicts_the_least_recently_used() -> None:
    """Past its capacity the cache drops the least recently used blocks, and no more."""
    cache = PrefixCache(capacity_blocks=4)
    old, new = [b"o1", b"o2"], [b"n1", b"n2", b"n3"]
    cache.lookup_and_store(old, 100)
    cache.lookup_and_store(new, 100)
    assert len(cache) == 4
    assert cache.lookup_and_store(old, 100).cached_tokens == 0  # o1 was evicted first
    assert cache.lookup_and_store(new[:1], 100).cached_tokens == 0  # evicted to fit old again


@pytest.mark.parametrize("version", VLLM_VERSIONS)
def test_details_are_off_unless_enabled(version: str) -> None:
    """Without the flag no version reports prompt_tokens_details."""
    hit = PrefixCache().lookup_and_store([b"a", b"b"], 40)
    assert prompt_tokens_details(version, hit, enabled=False) is None


async def usage_of(server: MockVLLM, messages: list[dict[str, Any]], stream: bool) -> Any:
    body: dict[str, Any] = {"model": "llm", "messages": messages, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/v1/chat/completions", json=body) as response,
    ):
        raw = await response.read()
    if stream:
        raw = next(e[6:] for e in raw.split(b"\n\n") if b'"choices":[]' in e)
    return json.loads(raw)["usage"]


@pytest.mark.parametrize("version", VLLM_VERSIONS)
@pytest.mark.parametrize("stream", [True, False])
async def test_the_mock_reports_growing_cached_tokens(version: str, stream: bool) -> None:
    """With enable_prompt_tokens_details, turn after turn reports a growing cached count in
    usage (0.13.0 omits a zero hit; 0.33.0 reports it with the tokens it wrote)."""
    config = MockConfig(vllm_version=version, enable_prompt_tokens_details=True, content_tokens=8)  # type: ignore[arg-type]
    async with MockVLLM(config) as server:
        usages = [await usage_of(server, conversation(n), stream) for n in range(1, 5)]
    cached = [(u.get("prompt_tokens_details") or {}).get("cached_tokens", 0) for u in usages]
    assert cached[0] == 0
    assert cached == sorted(cached)
    assert cached[-1] > 0
    if version == "0.13.0":
        assert usages[0].get("prompt_tokens_details") is None
    else:
        assert usages[0]["prompt_tokens_details"]["created_cache_tokens"] > 0


async def test_without_the_flag_usage_has_no_cached_tokens() -> None:
    """The default (flag off): a repeated conversation reports no prompt_tokens_details."""
    async with MockVLLM(MockConfig(content_tokens=8)) as server:
        await usage_of(server, conversation(2), False)
        usage = await usage_of(server, conversation(2), False)
    assert usage["prompt_tokens_details"] is None
