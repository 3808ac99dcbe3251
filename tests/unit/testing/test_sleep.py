"""The mock's sleep-mode endpoints: routes, answers and status codes per vLLM version, and what a
chat request meets while the engine sleeps (0.13.0: a dead engine; 0.33.0: held until awake)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from gptoss_modal import ConfigError, StreamError
from gptoss_modal.stream.client import Client
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

CHAT = {"model": "llm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _serve(**options: object) -> MockVLLM:
    server = MockVLLM(MockConfig(dev_mode=True, **options))  # type: ignore[arg-type]
    await server.start()
    return server


async def test_without_dev_mode_the_sleep_routes_do_not_exist(
    http: aiohttp.ClientSession,
) -> None:
    """As vLLM without VLLM_SERVER_DEV_MODE=1: /sleep is a 404."""
    async with MockVLLM() as server, http.post(f"{server.url}/sleep") as response:
        assert response.status == 404


async def test_v0_13_sleep_and_wake_answer_empty_200s(http: aiohttp.ClientSession) -> None:
    """0.13.0: /sleep and /wake_up answer an empty 200; /is_sleeping follows them."""
    server = await _serve(vllm_version="0.13.0")
    try:
        async with http.post(f"{server.url}/sleep", params={"level": "1"}) as response:
            assert (response.status, await response.read()) == (200, b"")
        async with http.get(f"{server.url}/is_sleeping") as response:
            assert await response.json() == {"is_sleeping": True}
        async with http.post(f"{server.url}/wake_up") as response:
            assert (response.status, await response.read()) == (200, b"")
        async with http.get(f"{server.url}/is_sleeping") as response:
            assert await response.json() == {"is_sleeping": False}
    finally:
        await server.stop()


async def test_v0_13_a_level_that_is_not_a_number_is_a_500(http: aiohttp.ClientSession) -> None:
    """0.13.0 reads level with int(): 'x' is an unhandled error, a 500, and nothing sleeps."""
    server = await _serve(vllm_version="0.13.0")
    try:
        async with http.post(f"{server.url}/sleep", params={"level": "x"}) as response:
            assert response.status == 500
        assert server.sleep.sleeping == set()
    finally:
        await server.stop()


async def test_v0_13_a_chat_while_asleep_kills_the_engine(http: aiohttp.ClientSession) -> None:
    """0.13.0 does not pause its scheduler: the chat fails (500) and /health turns 503."""
    server = await _serve(vllm_version="0.13.0")
    try:
        await http.post(f"{server.url}/sleep")
        async with http.post(f"{server.url}/v1/chat/completions", json=CHAT) as response:
            assert response.status == 500
        async with http.get(f"{server.url}/health") as response:
            assert response.status == 503
    finally:
        await server.stop()


async def test_v0_33_sleep_and_wake_answer_json(http: aiohttp.ClientSession) -> None:
    """0.33.0: {"status":"sleeping","level":1}, then {"status":"awake","tags":null}."""
    server = await _serve(vllm_version="0.33.0")
    try:
        async with http.post(f"{server.url}/sleep", params={"level": "1"}) as response:
            assert await response.json() == {"status": "sleeping", "level": 1}
        async with http.post(f"{server.url}/wake_up") as response:
            assert await response.json() == {"status": "awake", "tags": None}
    finally:
        await server.stop()


async def test_v0_33_a_partial_wake_stays_sleeping(http: aiohttp.ClientSession) -> None:
    """Waking only the weights leaves the KV cache asleep: "sleeping" until the last tag wakes."""
    server = await _serve(vllm_version="0.33.0")
    try:
        await http.post(f"{server.url}/sleep")
        async with http.post(f"{server.url}/wake_up", params={"tags": "weights"}) as response:
            assert await response.json() == {"status": "sleeping", "tags": ["weights"]}
        async with http.post(f"{server.url}/wake_up", params={"tags": "kv_cache"}) as response:
            assert await response.json() == {"status": "awake", "tags": ["kv_cache"]}
    finally:
        await server.stop()


@pytest.mark.parametrize("query", [{"level": "3"}, {"level": "-1"}, {"mode": "later"}])
async def test_v0_33_rejects_a_level_or_mode_out_of_range(
    http: aiohttp.ClientSession, query: dict[str, str]
) -> None:
    """level is Query(ge=0, le=2) and mode abort|wait|keep: anything else is a 400, no sleep."""
    server = await _serve(vllm_version="0.33.0")
    try:
        async with http.post(f"{server.url}/sleep", params=query) as response:
            assert response.status == 400
            assert (await response.json())["error"]["code"] == 400
        assert server.sleep.sleeping == set()
    finally:
        await server.stop()


async def test_v0_33_a_chat_while_asleep_is_held_until_wake(http: aiohttp.ClientSession) -> None:
    """0.33.0 pauses the scheduler: the chat gets no answer while asleep, then a 200 after wake."""
    server = await _serve(vllm_version="0.33.0")
    try:
        await http.post(f"{server.url}/sleep")
        chat = asyncio.ensure_future(http.post(f"{server.url}/v1/chat/completions", json=CHAT))
        await asyncio.sleep(0.3)
        assert not chat.done()
        await http.post(f"{server.url}/wake_up")
        response = await asyncio.wait_for(chat, 10)
        assert response.status == 200
        assert (await response.json())["choices"][0]["finish_reason"] == "length"
        response.release()
    finally:
        await server.stop()


async def test_never_wakes_keeps_the_engine_asleep(http: aiohttp.ClientSession) -> None:
    """sleep_fault='never-wakes': /wake_up answers, /is_sleeping stays true."""
    server = await _serve(vllm_version="0.33.0", sleep_fault="never-wakes")
    try:
        await http.post(f"{server.url}/sleep")
        async with http.post(f"{server.url}/wake_up") as response:
            assert (await response.json())["status"] == "sleeping"
        async with http.get(f"{server.url}/is_sleeping") as response:
            assert await response.json() == {"is_sleeping": True}
    finally:
        await server.stop()


async def test_garbled_after_wake_breaks_chats_only_after_a_wake(
    http: aiohttp.ClientSession,
) -> None:
    """sleep_fault='garbled-after-wake': a chat before any wake decodes, one after does not."""
    server = await _serve(vllm_version="0.33.0", sleep_fault="garbled-after-wake")
    try:
        async with Client(server.url) as client:
            before = await client.chat("hi", max_tokens=8)
            await http.post(f"{server.url}/sleep")
            await http.post(f"{server.url}/wake_up")
            with pytest.raises(StreamError):
                await client.chat("hi", max_tokens=8)
        assert before.done
    finally:
        await server.stop()


def test_an_unknown_sleep_fault_names_the_field() -> None:
    """A typo in sleep_fault is a ConfigError naming it and the choices."""
    with pytest.raises(ConfigError, match=r"sleep_fault.*never-wakes"):
        MockConfig(sleep_fault="nap")
