"""wait_healthy through a cold start: refused connections and 503 are "not yet", 401/404 not."""

from __future__ import annotations

import asyncio

import pytest

from gptoss_modal import AuthenticationError, HealthTimeout, HTTPStatusError
from gptoss_modal.client import HealthProgress, wait_healthy
from tests.strategies_stream import ReplayServer, Reply, free_port


@pytest.fixture(autouse=True)
def _fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Poll every few milliseconds so start-up sequences take little wall time."""
    monkeypatch.setattr("gptoss_modal.client.HEALTH_FIRST_DELAY_S", 0.01)
    monkeypatch.setattr("gptoss_modal.client.HEALTH_MAX_DELAY_S", 0.02)


async def test_healthy_server_answers_at_the_first_check() -> None:
    """A server answering 200 is healthy after one check, reported to the callback."""
    seen: list[HealthProgress] = []
    async with ReplayServer(Reply()) as server:
        progress = await wait_healthy(server.url, timeout_s=5, on_progress=seen.append)
    assert (progress.healthy, progress.attempts, progress.last_status) == (True, 1, "200 OK")
    assert seen == [progress]


async def test_refused_then_503_then_200_is_waited_through() -> None:
    """Start-up as it happens: nothing listening, then 503 while loading, then 200. Every
    check is reported with its status, and the wait ends healthy."""
    port = free_port()
    seen: list[HealthProgress] = []
    two_refusals = asyncio.Event()

    def record(progress: HealthProgress) -> None:
        seen.append(progress)
        if len(seen) == 2:
            two_refusals.set()

    async def start_server_after_refusals() -> None:
        await two_refusals.wait()
        async with ReplayServer(Reply(), health=(503, 503, 200), port=port):
            await waiter

    waiter = asyncio.ensure_future(
        wait_healthy(f"http://127.0.0.1:{port}", timeout_s=60, on_progress=record)
    )
    await asyncio.gather(start_server_after_refusals(), waiter)
    statuses = [p.last_status for p in seen]
    assert all("Connection refused" in s for s in statuses[:2])
    assert statuses[-3:] == [
        "HTTP 503 Service Unavailable",
        "HTTP 503 Service Unavailable",
        "200 OK",
    ]
    assert [p.attempts for p in seen] == list(range(1, len(seen) + 1))
    assert waiter.result().healthy


async def test_time_running_out_raises_HealthTimeout_with_the_last_status() -> None:
    """A server stuck at 503 raises HealthTimeout saying what it last answered."""
    async with ReplayServer(Reply(), health=(503,)) as server:
        with pytest.raises(HealthTimeout, match="503") as caught:
            await wait_healthy(server.url, timeout_s=0.1)
    assert caught.value.last_status == "HTTP 503 Service Unavailable"
    assert isinstance(caught.value, TimeoutError)


async def test_zero_timeout_checks_exactly_once() -> None:
    """timeout_s=0 makes one check: a dead URL fails at once with the refusal as last status."""
    seen: list[HealthProgress] = []
    with pytest.raises(HealthTimeout, match="1 check") as caught:
        await wait_healthy(f"http://127.0.0.1:{free_port()}", timeout_s=0, on_progress=seen.append)
    assert len(seen) == 1
    assert caught.value.last_status is not None
    assert "Connection refused" in caught.value.last_status


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (404, HTTPStatusError)])
async def test_401_and_404_fail_at_once(status: int, error: type[HTTPStatusError]) -> None:
    """A wrong key (proxy auth) or a wrong URL is not "starting up": it raises at the first
    check instead of waiting out the timeout."""
    async with ReplayServer(Reply(), health=(status,)) as server:
        with pytest.raises(error) as caught:
            await wait_healthy(server.url, timeout_s=60)
        assert server.health_checks == 1
    assert caught.value.status == status
