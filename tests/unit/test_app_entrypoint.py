"""`modal run -m gptoss_modal.app`'s entrypoint: Modal's async interface, and a crash loop."""

from __future__ import annotations

import asyncio
import gc
import importlib
import os
import sys
import warnings
from pathlib import Path
from types import ModuleType

import modal.exception
import pytest

from gptoss_modal._exceptions import HTTPStatusError
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM
from tests.unit.e2e.test_startup import PROXY_BODY, proxy_answering_503

API_KEY = "sk-entrypoint-secret"


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModuleType:
    """The app imported afresh, offline (no Modal token, no Hub), with the client's key."""
    for name in list(os.environ):
        if name.startswith(("GPTOSS_", "MODAL_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "no-modal.toml"))
    monkeypatch.setenv("GPTOSS_PREFLIGHT", "off")
    monkeypatch.setenv("GPTOSS_API_KEY", API_KEY)
    monkeypatch.delitem(sys.modules, "gptoss_modal.app", raising=False)
    return importlib.import_module("gptoss_modal.app")


# The blocking call leaves Modal's coroutine unawaited when the warning raises: collected here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_blocking_web_url_call_warns_in_a_coroutine(app: ModuleType) -> None:
    """Why the entrypoint uses ``.aio()``: Modal's blocking ``get_web_url()`` inside a running
    event loop raises AsyncUsageWarning (an error under this project's warning filter)."""

    async def blocking() -> None:
        app.serve.get_web_url()

    with pytest.raises(modal.exception.AsyncUsageWarning):
        asyncio.run(blocking())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... was never awaited"
        gc.collect()


async def test_the_entrypoint_asks_for_the_url_with_aio(app: ModuleType) -> None:
    """The entrypoint reaches Modal through ``get_web_url.aio()``: offline that fails as an
    unhydrated function does, never with AsyncUsageWarning."""
    with pytest.raises(modal.exception.ExecutionError, match="hydrated"):
        await app.main.info.raw_f(twice=False)


class WebUrl:
    """``serve.get_web_url`` in its coroutine form, pointing at a test server."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def aio(self) -> str:
        return self.url


async def test_the_entrypoint_stops_waiting_on_a_crash_loop(
    app: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dead engine behind a proxy answering 503 ends the entrypoint's wait with the proxy's
    body after STARTUP_FAILURES_IN_A_ROW answers, not after the 30-minute health timeout."""
    async with (
        MockVLLM(MockConfig(api_keys=(API_KEY,), fault="dead")) as mock,
        proxy_answering_503(mock.url) as url,
    ):
        monkeypatch.setattr(app.serve, "get_web_url", WebUrl(url))
        with pytest.raises(HTTPStatusError, match=f"{app.STARTUP_FAILURES_IN_A_ROW} times") as err:
            await app.main.info.raw_f(twice=False)
    assert PROXY_BODY in str(err.value)
