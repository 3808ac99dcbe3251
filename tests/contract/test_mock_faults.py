"""Fault injection, cold start, auth and metrics of the mock, seen by a raw HTTP client."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

pytestmark = pytest.mark.mock_only

CHAT = {"model": "llm", "messages": [{"role": "user", "content": "hi"}], "stream": True}


async def post(url: str, fault: str | None = None, **extra: Any) -> tuple[int, bytes]:
    """POST a streamed chat; returns the status and the body read to its end."""
    headers = {"X-Mock-Fault": fault} if fault else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/v1/chat/completions", json={**CHAT, **extra}, headers=headers) as r,
    ):
        return r.status, await r.read()


def events(body: bytes) -> list[bytes]:
    """The data of each event."""
    return [e[6:] for e in body.split(b"\n\n") if e]


async def test_an_error_fault_sends_the_error_event_then_done(start_mock: Any) -> None:
    """``error:after=N``: N events, vLLM's error event, then [DONE]."""
    server = await start_mock()
    status, body = await post(server.url, "error:after=4")
    data = events(body)
    assert status == 200
    assert len(data) == 6
    assert data[4].startswith(b'{"error":{"message":"Internal server error"')  # 0.33.0: compact
    assert data[5] == b"[DONE]"


async def read_into(received: list[bytes], url: str, fault: str) -> None:
    """Read a streamed chat's body into ``received`` until it ends or fails."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            url + "/v1/chat/completions", json=CHAT, headers={"X-Mock-Fault": fault}
        ) as response,
    ):
        async for chunk in response.content.iter_any():
            received.append(chunk)  # noqa: PERF401 - keep what came before the failure


async def test_a_drop_fault_cuts_the_connection_mid_stream(start_mock: Any) -> None:
    """``drop``: the body ends without [DONE] and the client sees a payload error."""
    server = await start_mock()
    received: list[bytes] = []
    with pytest.raises(aiohttp.ClientPayloadError):
        await read_into(received, server.url, "drop:after=3")
    body = b"".join(received)
    assert b"[DONE]" not in body
    assert body.count(b"data: ") == 3


async def test_a_stall_fault_pauses_then_finishes(start_mock: Any) -> None:
    """``stall``: the stream pauses after N events and then completes normally."""
    server = await start_mock()
    status, body = await post(server.url, "stall:after=2,seconds=0.05")
    assert status == 200
    assert body.endswith(b"data: [DONE]\n\n")
    _, clean = await post(server.url, seed=1)
    assert len(events(body)) == len(events(clean))


async def test_a_malformed_fault_inserts_a_line_that_is_not_json(start_mock: Any) -> None:
    """``malformed``: one event whose data is not JSON, the stream otherwise intact."""
    import json

    server = await start_mock()
    _, body = await post(server.url, "malformed:after=2")
    bad = []
    for data in events(body):
        if data == b"[DONE]":
            continue
        try:
            json.loads(data)
        except json.JSONDecodeError:
            bad.append(data)
    assert len(bad) == 1
    assert body.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_http_faults_answer_that_status(start_mock: Any, status: int) -> None:
    """``http-N``: the status, before any stream byte."""
    server = await start_mock()
    got, body = await post(server.url, f"http-{status}")
    assert got == status
    assert b"data:" not in body


async def test_server_faults_hit_a_seeded_share_of_requests(start_mock: Any) -> None:
    """A server-wide fault with a rate hits the same requests for the same seed."""

    async def pattern(seed: int) -> list[bool]:
        server = await start_mock(fault="http-503:rate=0.5", seed=seed)
        return [(await post(server.url))[0] == 503 for _ in range(12)]

    first, again, other = await pattern(3), await pattern(3), await pattern(4)
    assert first == again
    assert 0 < sum(first) < 12
    assert first != other


async def test_a_dead_engine_fails_health_and_chats(start_mock: Any) -> None:
    """``dead``: /health answers 503 and a chat 500, as a dead vLLM engine does."""
    server = await start_mock(fault="dead")
    async with aiohttp.ClientSession() as session, session.get(server.url + "/health") as r:
        assert r.status == 503
    assert (await post(server.url))[0] == 500


async def health(url: str) -> int:
    """The status of ``GET /health``."""
    async with aiohttp.ClientSession() as session, session.get(url + "/health") as r:
        return r.status


@pytest.mark.parametrize("fault", ["dead:rate=1", "dead:rate=0.5", "dead:after=2", "dead:rate=0"])
async def test_a_server_wide_dead_fault_with_options_is_still_dead(
    start_mock: Any, fault: str
) -> None:
    """A dead engine is the server's state: with any options, /health is 503 and every chat 500."""
    server = await start_mock(fault=fault)
    assert server.engine_dead
    assert await health(server.url) == 503
    assert [(await post(server.url))[0] for _ in range(4)] == [500] * 4


@pytest.mark.parametrize("stream", [True, False])
async def test_a_per_request_dead_fault_fails_that_request_as_a_dead_engine(
    start_mock: Any, stream: bool
) -> None:
    """Header ``dead``: that request gets the 500 a dead engine gives; the server stays alive."""
    server = await start_mock()
    status, body = await post(server.url, "dead", stream=stream)
    assert status == 500
    assert b"The server had an error while processing your request." in body  # 0.33.0's
    assert await health(server.url) == 200
    assert (await post(server.url, stream=stream))[0] == 200
    server.set_engine_dead()
    assert await post(server.url, stream=stream) == (status, body)  # the same reply, byte for byte


async def test_a_cold_start_refuses_connections_then_serves() -> None:
    """``cold_start_mode=refuse``: connections are refused until the cold start ends."""
    server = MockVLLM(MockConfig(cold_start_s=0.3))
    await server.start()
    try:
        async with aiohttp.ClientSession() as session:
            with pytest.raises(aiohttp.ClientConnectorError):
                await session.get(server.url + "/health")
            for _ in range(100):
                try:
                    async with session.get(server.url + "/health") as r:
                        assert r.status == 200
                        break
                except aiohttp.ClientConnectorError:
                    await asyncio.sleep(0.05)
            else:
                pytest.fail("the mock never started listening")
    finally:
        await server.stop()


async def test_an_unhealthy_cold_start_answers_503_then_200(start_mock: Any) -> None:
    """``cold_start_mode=unhealthy``: /health is 503 during the cold start, then 200."""
    server = await start_mock(cold_start_s=0.3, cold_start_mode="unhealthy")
    seen = []
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(server.url + "/health") as r:
                seen.append(r.status)
            if r.status == 200:
                break
            await asyncio.sleep(0.05)
    assert seen[0] == 503
    assert seen[-1] == 200


async def test_the_api_key_guards_only_v1(start_mock: Any) -> None:
    """With a key, /v1/* needs it (401 otherwise) and /health, /metrics do not."""
    server = await start_mock(api_keys=("sk-1",))
    async with aiohttp.ClientSession() as session:
        async with session.get(server.url + "/v1/models") as r:
            assert r.status == 401
            assert await r.read() == b'{"error":"Unauthorized"}'
        headers = {"Authorization": "bearer sk-1"}
        async with session.get(server.url + "/v1/models", headers=headers) as r:
            assert r.status == 200
        for path in ("/health", "/metrics", "/version"):
            async with session.get(server.url + path) as r:
                assert r.status == 200


async def metric(url: str, name: str) -> float:
    """One sample's value from /metrics."""
    async with aiohttp.ClientSession() as session, session.get(url + "/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith(name):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")


async def test_spec_decode_counters_match_the_rate_and_the_served_tokens(
    start_mock: Any,
) -> None:
    """After whole periods of drafts, Δaccepted/Δdraft is the rate and every served token is
    a prefill token or a verified step's output."""
    server = await start_mock(num_speculative_tokens=3, spec_acceptance_rate=0.7)
    for i in range(6):
        await post(server.url, seed=i, ignore_eos=True, max_tokens=400)
    drafts = await metric(server.url, "vllm:spec_decode_num_drafts_total")
    draft_tokens = await metric(server.url, "vllm:spec_decode_num_draft_tokens_total")
    accepted = await metric(server.url, "vllm:spec_decode_num_accepted_tokens_total")
    generated = await metric(server.url, "vllm:generation_tokens_total")
    per_pos0 = await metric(
        server.url,
        'vllm:spec_decode_num_accepted_tokens_per_pos_total{model_name="openai/gpt-oss-20b",engine="0",position="0"}',
    )
    assert draft_tokens == 3 * drafts
    assert accepted == int(draft_tokens * 0.7)
    assert abs(accepted / draft_tokens - 0.7) <= 1 / draft_tokens
    assert per_pos0 <= drafts
    # each request: 1 prefill token, then per step 1 + accepted (the last step may be cut)
    assert 6 + drafts <= generated <= 6 + drafts + accepted
    assert generated == 6 * 400


async def test_usage_agrees_with_the_streamed_token_counts(start_mock: Any) -> None:
    """The usage chunk's completion tokens equal the last continuous-usage count and the
    generation counter."""
    import json

    server = await start_mock(stream_interval=3)
    _, body = await post(
        server.url, stream_options={"include_usage": True, "continuous_usage_stats": True}
    )
    chunks = [json.loads(d) for d in events(body) if d != b"[DONE]"]
    counts = [c["usage"]["completion_tokens"] for c in chunks]
    assert counts == sorted(counts)
    assert counts[-1] == counts[-2]  # the finish chunk and the usage chunk
    assert counts[-1] == await metric(server.url, "vllm:generation_tokens_total")


async def test_send_times_are_recorded_per_event(start_mock: Any) -> None:
    """With record_send_times each event of a stream gets a perf_counter stamp, in order."""
    server = await start_mock(record_send_times=True, coalesce_writes=False)
    _, body = await post(server.url)
    (record,) = server.send_log.values()
    assert len(record.event_times) == len(events(body))
    assert record.event_times == sorted(record.event_times)
    assert record.arrival <= record.event_times[0]
