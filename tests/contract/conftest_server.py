"""Fixtures for the server under test: the in-process mock, or a real URL.

``target`` is the in-process mock (with an API key) by default, or the OpenAI-compatible server
at ``GPTOSS_BASE_URL`` when that is set: the same contract tests then check a real deployment.
Its credentials come from the environment as the clients' do (``GPTOSS_API_KEY``, and for a
Modal app with proxy auth ``GPTOSS_MODAL_KEY``/``GPTOSS_MODAL_SECRET``). Tests marked
``mock_only`` (fault injection, exact mock settings) are skipped against a real URL. Imported
by ``conftest.py``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from gptoss_modal.deploy import CLIENT_API_KEY_ENV, proxy_auth_headers
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

MOCK_API_KEY = "sk-mock-contract"
REAL_URL_ENV = "GPTOSS_BASE_URL"


def real_base_url() -> str | None:
    """The real server's base URL (without ``/v1``), when the suite points at one."""
    url = os.environ.get(REAL_URL_ENV, "").strip()
    if not url:
        return None
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


@dataclass
class Target:
    """Where the contract tests send requests (its repr shows no credential)."""

    base_url: str
    api_key: str | None = field(repr=False)
    model: str
    mock: MockVLLM | None  # None against a real server
    proxy_headers: dict[str, str] = field(default_factory=dict, repr=False)  # Modal-Key/-Secret

    @property
    def headers(self) -> dict[str, str]:
        """Every credential as a header: the bearer key and Modal proxy auth."""
        bearer = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return {**bearer, **self.proxy_headers}


def real_target(url: str, env: Mapping[str, str]) -> Target:
    """The real server at ``url``, with the credentials the environment holds."""
    return Target(
        base_url=url,
        api_key=env.get(CLIENT_API_KEY_ENV, "").strip() or None,
        model=env.get("GPTOSS_SERVED_MODEL", "llm"),
        mock=None,
        proxy_headers=proxy_auth_headers(env),
    )


@pytest.fixture(autouse=True)
def _skip_mock_only_against_real_server(request: pytest.FixtureRequest) -> None:
    """Fault-injection tests need the mock; skip them when GPTOSS_BASE_URL is set."""
    if request.node.get_closest_marker("mock_only") and real_base_url():
        pytest.skip(f"mock-only test; {REAL_URL_ENV} points the suite at a real server")


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    """The in-process mock on a free port, or the real server at GPTOSS_BASE_URL."""
    url = real_base_url()
    if url:
        yield real_target(url, os.environ)
        return
    async with MockVLLM(MockConfig(api_keys=(MOCK_API_KEY,), content_tokens=24)) as server:
        yield Target(base_url=server.url, api_key=MOCK_API_KEY, model="llm", mock=server)


MockFactory = Callable[..., Awaitable[MockVLLM]]


@pytest.fixture
async def start_mock() -> AsyncIterator[MockFactory]:
    """``await start_mock(**MockConfig fields)``: an in-process mock, stopped after the test."""
    servers: list[MockVLLM] = []

    async def start(**fields: Any) -> MockVLLM:
        server = MockVLLM(MockConfig(**fields))
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()
