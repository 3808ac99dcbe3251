"""The fault matrix: the client against each hostile server and each mock fault, bounded.

Every case runs against a real server on 127.0.0.1:0 under a hang guard, and asserts the typed
error, the partial result kept, the peak of Python memory allocated while it ran (tracemalloc,
under the limit the case states) and that no task was left behind. The hostile cases failed
before the hardening (an unbounded, quadratic event; heartbeats or a trickle holding a stream
for ever; no deadline; credentials sent across origins).
"""

from __future__ import annotations

import asyncio
import re
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from gptoss_modal import (
    ChatResult,
    ChunkParseError,
    GptossModalError,
    HTTPStatusError,
    IncompleteStreamError,
    SSEDecodeError,
    StallTimeout,
    TimeoutException,
    UpstreamError,
)
from gptoss_modal.stream.client import Client
from tests.contract._hostile import EVENT_STREAM_HEAD, HostileServer, Step, every, head
from tests.strategies_stream import VLLM_CONTENT

MiB = 1024 * 1024
GUARD_S = 30.0  # a hang guard per case, not a speed assert
EVENT = f"data: {VLLM_CONTENT}\n\n".encode()
PIECE = 64 * 1024  # what a hostile server writes at a time (bounded socket buffers)


def pieces(data: bytes, total: int) -> list[Step]:
    """``total`` bytes made of ``data`` repeated, as writes of PIECE bytes (one shared object)."""
    block = (data * (PIECE // len(data) + 1))[:PIECE]
    return [block] * (total // PIECE)


async def no_wait(seconds: float) -> None:
    """A fake sleep: retries do not really wait."""


@dataclass(frozen=True)
class Case:
    """One hostile server and what the client must do with it."""

    name: str
    script: list[Step]
    expected: type[GptossModalError] | None  # None: the reply must succeed
    partial_chunks: int  # chunks the result (or the error's partial) must hold, at least
    memory_limit_mib: float
    client: dict[str, Any] = field(default_factory=dict)
    match: str = ""


HOSTILE = [
    Case(
        "one 32 MiB event without a line break",
        [EVENT_STREAM_HEAD, EVENT, b"data: ", *pieces(b"x", 32 * MiB)],
        SSEDecodeError,
        1,
        8,
        {"max_event_chars": MiB},
        "max_event_chars=1048576",
    ),
    Case(
        "20 MiB event against the default 16 Mi limit",
        [EVENT_STREAM_HEAD, EVENT, b"data: ", *pieces(b"x", 20 * MiB)],
        SSEDecodeError,
        1,
        24,  # the 16 Mi characters themselves, as 64 KiB pieces, and aiohttp's buffers
        {},
        "max_event_chars=16777216",
    ),
    Case(
        "32 MiB of data lines without a blank line",
        [EVENT_STREAM_HEAD, EVENT, *pieces(b"data: 0123456789\n", 32 * MiB)],
        SSEDecodeError,
        1,
        8,
        {"max_event_chars": MiB},
    ),
    Case(
        "16 MiB of heartbeat comments before a valid reply",
        [EVENT_STREAM_HEAD, *pieces(b": keepalive\n", 16 * MiB), b"\n", EVENT, b"data: [DONE]\n\n"],
        None,
        1,
        8,
    ),
    Case(
        "heartbeat comments only, every 20 ms",
        [EVENT_STREAM_HEAD, EVENT, *every(0.02, b": keepalive\n\n", 5000)],
        StallTimeout,
        1,
        4,
        {"stall_timeout_s": 0.3},
        "no event",
    ),
    Case(
        "one byte every 20 ms",
        [EVENT_STREAM_HEAD, EVENT, b"data: ", *every(0.02, b"x", 5000)],
        StallTimeout,
        1,
        4,
        {"stall_timeout_s": 0.3},
    ),
    Case(
        "events every 20 ms for ever",
        [EVENT_STREAM_HEAD, *every(0.02, EVENT, 5000)],
        TimeoutException,
        1,
        4,
        {"request_timeout_s": 0.5},
        r"0\.5 s limit",
    ),
    Case(
        "a 503 for ever (retried twice)",
        [head("503 Service Unavailable")],
        HTTPStatusError,
        0,
        4,
        {"sleep": no_wait},
    ),
]


async def measured(
    run: Callable[[], Awaitable[ChatResult]],
) -> tuple[ChatResult | GptossModalError, float]:
    """What ``run`` returned or raised (ours only), and the peak MiB it allocated."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    try:
        async with asyncio.timeout(GUARD_S):
            outcome: ChatResult | GptossModalError = await run()
    except GptossModalError as exc:
        outcome = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1] / MiB
        tracemalloc.stop()
    return outcome, peak


def check(
    outcome: ChatResult | GptossModalError,
    expected: type[GptossModalError] | None,
    partial_chunks: int,
    match: str = "",
) -> None:
    """The typed error (or success) and the partial result kept."""
    if expected is None:
        assert isinstance(outcome, ChatResult), outcome
        result = outcome
    else:
        assert isinstance(outcome, expected), outcome
        assert re.search(match, str(outcome))
        result = getattr(outcome, "partial", None) or ChatResult()
    assert len(result.chunks) >= partial_chunks


@pytest.fixture
async def no_leaked_tasks() -> AsyncIterator[None]:
    """After the test's servers and clients closed, no task but the test's own is left."""
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    left = asyncio.all_tasks() - before - {asyncio.current_task()}
    assert not left, left


@pytest.mark.parametrize("case", HOSTILE, ids=[c.name for c in HOSTILE])
async def test_hostile_server(case: Case, no_leaked_tasks: None) -> None:
    """Each hostile server: the typed error, the partial, memory under the case's limit."""
    async with HostileServer(case.script) as server, Client(server.url, **case.client) as client:
        outcome, peak_mib = await measured(lambda: client.chat("hi"))
    print(f"{case.name}: peak {peak_mib:.1f} MiB")  # shown with -s, for the notes
    check(outcome, case.expected, case.partial_chunks, case.match)
    assert peak_mib < case.memory_limit_mib


async def test_cross_origin_redirect(no_leaked_tasks: None) -> None:
    """A redirect to another origin: refused, and the other server gets nothing."""
    async with HostileServer([EVENT_STREAM_HEAD, EVENT]) as elsewhere:
        moved = head("308 Permanent Redirect", f"Location: {elsewhere.url}/v1/chat/completions")
        async with HostileServer([moved]) as server:
            headers = {"Modal-Key": "wk-1", "Modal-Secret": "ws-1"}
            async with Client(server.url, api_key="sk-1", headers=headers) as client:
                outcome, peak_mib = await measured(lambda: client.chat("hi"))
    check(outcome, HTTPStatusError, 0, "another origin")
    assert elsewhere.requests == []
    assert peak_mib < 4


MOCK_FAULTS = [
    ("error:after=2", UpstreamError, 2),
    ("drop:after=2", IncompleteStreamError, 2),
    ("stall:after=2", StallTimeout, 2),
    ("malformed:after=2", ChunkParseError, 2),
    ("http-500", HTTPStatusError, 0),
    ("http-503", HTTPStatusError, 0),
    ("http-429", HTTPStatusError, 0),
    ("dead", HTTPStatusError, 0),
]


@pytest.mark.parametrize(("fault", "expected", "partial"), MOCK_FAULTS)
async def test_mock_fault(
    no_leaked_tasks: None,  # first: set up before the mock, so checked after it stopped
    start_mock: Any,
    fault: str,
    expected: type[GptossModalError],
    partial: int,
) -> None:
    """Each of the mock's faults, per request: the typed error, the partial, bounded memory."""
    server = await start_mock()
    headers = {"X-Mock-Fault": fault}
    async with Client(server.url, headers=headers, stall_timeout_s=0.3, sleep=no_wait) as client:
        outcome, peak_mib = await measured(lambda: client.chat("hi"))
    check(outcome, expected, partial)
    assert peak_mib < 4
