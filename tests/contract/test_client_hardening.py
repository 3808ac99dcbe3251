"""The client against servers that misbehave: retries, redirects, stalls that send bytes, deadlines.

Every test here failed before the hardening: the client had no retries, followed redirects to
any origin with Modal-Key/Modal-Secret, counted heartbeat bytes as progress, had no deadline and
named the probe timeout as the connect timeout.
"""

from __future__ import annotations

import asyncio

import pytest

from gptoss_modal import (
    ConnectError,
    HealthTimeout,
    HTTPStatusError,
    IncompleteStreamError,
    StallTimeout,
    TimeoutException,
)
from gptoss_modal.stream.client import Client
from tests.contract._hostile import (
    EVENT_STREAM_HEAD,
    HostileServer,
    every,
    head,
    unaccepting_port,
)
from tests.strategies_stream import (
    DROP,
    VLLM_CONTENT,
    VLLM_ROLE,
    VLLM_USAGE,
    ReplayServer,
    Reply,
    free_port,
    vllm_stream,
)

STREAM = vllm_stream(VLLM_ROLE, VLLM_CONTENT, VLLM_USAGE)
EVENT = f"data: {VLLM_CONTENT}\n\n".encode()
GUARD_S = 20.0  # a hang guard, not a speed assert: every case ends far sooner
SECRETS = {"Modal-Key": "wk-SECRET", "Modal-Secret": "ws-SECRET"}


class FakeSleep:
    """Records the waits asked for, and waits for none of them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


# --- retries ---


async def test_a_503_twice_then_a_stream_is_a_result_after_two_retries() -> None:
    """503 twice, then a stream: three requests, two waits, and the whole result."""
    busy = Reply(status=503, body=b'{"error": {"message": "busy"}}')
    sleep = FakeSleep()
    async with (
        ReplayServer(busy, busy, Reply(STREAM)) as server,
        Client(server.url, sleep=sleep) as client,
    ):
        result = await client.chat("hi")
    assert result.done
    assert len(server.requests) == 3
    assert len(sleep.waits) == 2


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
async def test_429_and_5xx_are_retried_with_openai_backoff_then_raised(status: int) -> None:
    """Always refused: 1 + 2 requests, waits of 0.5 s then 1 s (less up to a quarter)."""
    sleep = FakeSleep()
    async with (
        ReplayServer(Reply(status=status, body=b"{}")) as server,
        Client(server.url, sleep=sleep) as client,
    ):
        with pytest.raises(HTTPStatusError) as caught:
            await client.chat("hi")
    assert caught.value.status == status
    assert len(server.requests) == 3
    assert 0.375 <= sleep.waits[0] <= 0.5
    assert 0.75 <= sleep.waits[1] <= 1.0


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_a_client_error_is_not_retried(status: int) -> None:
    """4xx but 408 and 429: the request is wrong, sending it again cannot help."""
    sleep = FakeSleep()
    async with (
        ReplayServer(Reply(status=status, body=b"{}")) as server,
        Client(server.url, sleep=sleep) as client,
    ):
        with pytest.raises(HTTPStatusError):
            await client.chat("hi")
    assert (len(server.requests), sleep.waits) == (1, [])


async def test_max_retries_0_sends_once() -> None:
    """max_retries=0 (the bench's setting): one request, the error at once."""
    sleep = FakeSleep()
    async with (
        ReplayServer(Reply(status=503, body=b"{}")) as server,
        Client(server.url, sleep=sleep, max_retries=0) as client,
    ):
        with pytest.raises(HTTPStatusError):
            await client.chat("hi")
    assert (len(server.requests), sleep.waits) == (1, [])


async def test_a_stream_that_began_is_never_sent_again() -> None:
    """A connection cut after the first chunk is an incomplete stream, with no retry."""
    sleep = FakeSleep()
    cut = Reply([*STREAM[:1], DROP])
    async with ReplayServer(cut) as server, Client(server.url, sleep=sleep) as client:
        with pytest.raises(IncompleteStreamError) as caught:
            await client.chat("hi")
    assert len(caught.value.partial.chunks) == 1
    assert (len(server.requests), sleep.waits) == (1, [])


async def test_a_refused_connection_is_retried_twice() -> None:
    """Nothing listening: two retries with backoff, then ConnectError."""
    sleep = FakeSleep()
    async with Client(f"http://127.0.0.1:{free_port()}", sleep=sleep) as client:
        with pytest.raises(ConnectError, match="refused"):
            await client.chat("hi")
    assert len(sleep.waits) == 2


async def test_no_retry_wait_runs_past_the_deadline() -> None:
    """A backoff that would end after request_timeout_s is not waited: the error comes now."""
    sleep = FakeSleep()
    async with (
        ReplayServer(Reply(status=503, body=b"{}")) as server,
        Client(server.url, sleep=sleep, request_timeout_s=0.3) as client,
    ):
        with pytest.raises(HTTPStatusError):
            await client.chat("hi")
    assert (len(server.requests), sleep.waits) == (1, [])


async def test_retry_after_is_honoured_from_the_reply_headers() -> None:
    """A hostile server's 503 with Retry-After: 7 makes the client wait 7 s (fake) each time."""
    busy = head("503 Service Unavailable", "Retry-After: 7")
    sleep = FakeSleep()
    async with HostileServer([busy]) as server, Client(server.url, sleep=sleep) as client:
        with pytest.raises(HTTPStatusError):
            await client.chat("hi")
    assert sleep.waits == [7.0, 7.0]
    assert len(server.requests) == 3


# --- redirects ---


async def test_a_cross_origin_redirect_of_a_chat_is_refused_and_sends_no_credentials() -> None:
    """307 to another origin: HTTPStatusError naming it; the other host gets no request."""
    async with HostileServer([EVENT_STREAM_HEAD, EVENT]) as elsewhere:
        moved = head("307 Temporary Redirect", f"Location: {elsewhere.url}/v1/chat/completions")
        async with (
            HostileServer([moved]) as server,
            Client(server.url, api_key="sk-SECRET", headers=SECRETS) as client,
        ):
            with pytest.raises(HTTPStatusError, match="another origin") as caught:
                await client.chat("hi")
    assert elsewhere.requests == []
    assert caught.value.status == 307
    assert "SECRET" not in str(caught.value)


async def test_a_cross_origin_redirect_of_metrics_is_refused() -> None:
    """The bench's /metrics request refuses a redirect to another origin the same way."""
    async with HostileServer([head("200 OK")]) as elsewhere:
        moved = head("302 Found", f"Location: {elsewhere.url}/metrics")
        async with (
            HostileServer([moved]) as server,
            Client(server.url, headers=SECRETS, max_retries=0) as client,
        ):
            with pytest.raises(HTTPStatusError, match="another origin"):
                await client.fetch_metrics()
    assert elsewhere.requests == []


async def test_a_same_origin_307_is_followed_with_the_body() -> None:
    """A 307 to another path of the same server is followed; the stream comes from there."""
    body = b"".join(w for w in STREAM if isinstance(w, bytes))

    def answer(request: bytes) -> bytes:
        if request.startswith(b"POST /v1/chat/completions "):
            return head("307 Temporary Redirect", "Location: /v2/chat")
        return EVENT_STREAM_HEAD + body

    async with HostileServer([answer]) as server, Client(server.url) as client:
        result = await client.chat("hi")
    assert result.done
    assert [r.split(b" ")[1] for r in server.requests] == [b"/v1/chat/completions", b"/v2/chat"]


async def test_a_redirect_that_would_turn_the_post_into_a_get_is_refused() -> None:
    """A same-origin 302 for the chat is an error saying where it points, not a silent GET."""
    async with (
        HostileServer([head("302 Found", "Location: /elsewhere")]) as server,
        Client(server.url) as client,
    ):
        with pytest.raises(HTTPStatusError, match="POST into a GET"):
            await client.chat("hi")


# --- stalls and deadlines ---


async def test_heartbeat_comments_alone_are_a_stall() -> None:
    """A server sending only ': keepalive' every 20 ms fails with StallTimeout, not never."""
    script = [EVENT_STREAM_HEAD, EVENT, *every(0.02, b": keepalive\n\n", 5000)]
    async with HostileServer(script) as server, Client(server.url, stall_timeout_s=0.3) as client:
        async with asyncio.timeout(GUARD_S):
            with pytest.raises(StallTimeout, match="no event") as caught:
                await client.chat("hi")
    assert len(caught.value.partial.chunks) == 1


async def test_a_trickle_of_bytes_without_an_event_is_a_stall() -> None:
    """One byte every 20 ms of an event that never ends is no progress."""
    trickle = [EVENT_STREAM_HEAD, b"data: ", *every(0.02, b"x", 5000)]
    async with HostileServer(trickle) as server, Client(server.url, stall_timeout_s=0.3) as client:
        async with asyncio.timeout(GUARD_S):
            with pytest.raises(StallTimeout, match="waiting for the first chunk"):
                await client.chat("hi")


async def test_events_slower_than_bytes_but_faster_than_the_stall_do_not_stall() -> None:
    """The partner: events every 50 ms with a 1 s stall limit read to the end."""
    script = [EVENT_STREAM_HEAD, *every(0.05, EVENT, 10), b"data: [DONE]\n\n"]
    async with HostileServer(script) as server, Client(server.url, stall_timeout_s=1.0) as client:
        result = await client.chat("hi")
    assert len(result.chunks) == 10


async def test_a_stream_that_never_ends_fails_at_the_deadline_with_its_partial() -> None:
    """Events every 20 ms for ever: request_timeout_s ends it, keeping what came."""
    script = [EVENT_STREAM_HEAD, *every(0.02, EVENT, 5000)]
    async with (
        HostileServer(script) as server,
        Client(server.url, request_timeout_s=0.5) as client,
    ):
        async with asyncio.timeout(GUARD_S):
            with pytest.raises(TimeoutException, match=r"0\.5 s limit") as caught:
                await client.chat("hi")
    assert len(caught.value.partial.chunks) >= 1


async def test_the_health_wait_names_the_connect_timeout_it_used() -> None:
    """A 0.2 s connect timeout is what the health wait's message says, not the 5 s probe."""
    with unaccepting_port() as port:
        client = Client(f"http://127.0.0.1:{port}", connect_timeout_s=0.2)
        async with client:
            with pytest.raises(HealthTimeout) as caught:
                await client.wait_healthy(timeout_s=0)
    assert "longer than 0.2 s" in str(caught.value)
