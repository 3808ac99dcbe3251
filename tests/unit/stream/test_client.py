"""The client's 401 message and its health-check backoff."""

from __future__ import annotations

import pytest

from gptoss_modal import AuthenticationError, HealthTimeout
from gptoss_modal.stream.client import Client
from tests.strategies_stream import ReplayServer, Reply, free_port


@pytest.mark.parametrize(
    ("api_key", "headers", "sent"),
    [
        (None, {}, "no API key and no Modal-Key/Modal-Secret headers were sent"),
        ("sk-wrong", {}, "the API key sent was rejected"),
        (None, {"modal-key": "wk-1", "modal-secret": "ws-2"}, "the Modal-Key/Modal-Secret"),
    ],
)
async def test_a_401_names_both_ways_to_authenticate(
    api_key: str | None, headers: dict[str, str], sent: str
) -> None:
    """A 401 says which credentials were sent (never their values) and names both fixes: the
    key vLLM was started with, or a Modal proxy auth token's Modal-Key/Modal-Secret headers."""
    reply = Reply(status=401, body=b'{"error":"Unauthorized"}')
    async with (
        ReplayServer(reply) as server,
        Client(server.url, api_key=api_key, headers=headers) as client,
    ):
        with pytest.raises(AuthenticationError) as caught:
            await client.chat("hi")
    message = str(caught.value)
    assert sent in message
    assert "vLLM --api-key" in message
    assert "Modal-Key and Modal-Secret headers" in message
    for secret in ("sk-wrong", "wk-1", "ws-2"):
        assert secret not in message


async def test_health_checks_back_off_from_a_quarter_second_by_half_up_to_five() -> None:
    """Against a server that never answers, the waits between /health checks are 0.25 s, then
    1.5x longer each time, at most 5 s, the last one cut to the time left (a fake clock and
    sleep: nothing really waits)."""
    now = 0.0
    waits: list[float] = []

    def clock() -> float:
        return now

    async def sleep(seconds: float) -> None:
        nonlocal now
        waits.append(seconds)
        now += seconds

    client = Client(f"http://127.0.0.1:{free_port()}", clock=clock, sleep=sleep)
    async with client:
        with pytest.raises(HealthTimeout, match="11 checks"):
            await client.wait_healthy(timeout_s=20)
    expected = [0.25, 0.375, 0.5625, 0.84375, 1.265625, 1.8984375, 2.84765625, 4.271484375]
    assert waits == pytest.approx([*expected, 5.0, 20 - sum(expected) - 5.0])
