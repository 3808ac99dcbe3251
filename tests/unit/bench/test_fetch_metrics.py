"""Client.fetch_metrics: /metrics on the client's own session, with its errors and a size bound."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gptoss_modal import AuthenticationError, ConnectError, HTTPStatusError, StreamError
from gptoss_modal.stream import client as client_module
from gptoss_modal.stream.client import Client
from tests.strategies_stream import free_port

TEXT = "# TYPE vllm:num_requests_running gauge\nvllm:num_requests_running 1\n"


class MetricsServer:
    """Answers /metrics with ``status`` and ``body``, recording each request's headers."""

    def __init__(self) -> None:
        self.status = 200
        self.body = TEXT.encode()
        self.headers: list[dict[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        return web.Response(status=self.status, body=self.body, content_type="text/plain")


@pytest.fixture
async def server() -> AsyncIterator[MetricsServer]:
    """A /metrics server on a free port."""
    metrics = MetricsServer()
    app = web.Application()
    app.router.add_get("/metrics", metrics.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    metrics.url = f"http://127.0.0.1:{port}"
    yield metrics
    await runner.cleanup()


async def test_metrics_come_back_as_text_with_the_clients_credentials(
    server: MetricsServer,
) -> None:
    """The body is returned as text; the request carries the client's key and headers."""
    async with Client(server.url, api_key="sk-test", headers={"Modal-Key": "k"}) as client:
        assert await client.fetch_metrics() == TEXT
    (headers,) = server.headers
    assert headers["Authorization"] == "Bearer sk-test"
    assert headers["Modal-Key"] == "k"


@pytest.mark.parametrize(("status", "error"), [(401, AuthenticationError), (503, HTTPStatusError)])
async def test_a_non_200_answer_is_the_clients_status_error(
    server: MetricsServer, status: int, error: type[HTTPStatusError]
) -> None:
    """401 is an AuthenticationError, any other non-200 an HTTPStatusError with the status."""
    server.status, server.body = status, b'{"error": {"message": "no"}}'
    async with Client(server.url) as client:
        with pytest.raises(error) as info:
            await client.fetch_metrics()
    assert info.value.status == status


async def test_a_body_over_the_bound_is_refused(
    server: MetricsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A /metrics body larger than the bound raises StreamError instead of filling memory."""
    monkeypatch.setattr(client_module, "METRICS_BODY_LIMIT_BYTES", 1024)
    server.body = b"x" * 4096
    async with Client(server.url) as client:
        with pytest.raises(StreamError, match="more than 1024 bytes"):
            await client.fetch_metrics()


async def test_a_refused_connection_is_a_connect_error() -> None:
    """Nothing listening: the client's ConnectError, from the one translation."""
    async with Client(f"http://127.0.0.1:{free_port()}") as client:
        with pytest.raises(ConnectError):
            await client.fetch_metrics(timeout_s=5.0)
