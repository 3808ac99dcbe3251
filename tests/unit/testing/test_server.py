"""MockVLLM: starting where it cannot bind leaves nothing open (no socket, no runner)."""

from __future__ import annotations

import gc
import warnings

import pytest
from aiohttp import web

from gptoss_modal.testing.mock_server import MockVLLM


async def test_a_failed_bind_closes_the_socket_and_cleans_up_the_runner(
    taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``MockVLLM.start`` on a taken port raises, with its socket closed and its runner cleaned up;
    ``stop`` afterwards has nothing left to do."""
    cleaned: list[web.AppRunner] = []
    cleanup = web.AppRunner.cleanup

    async def spy(runner: web.AppRunner) -> None:
        cleaned.append(runner)
        await cleanup(runner)

    monkeypatch.setattr(web.AppRunner, "cleanup", spy)
    server = MockVLLM(port=taken_port)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(OSError, match=r"(?i)address already in use"):
            await server.start()
        gc.collect()  # a socket left open is collected (and warned about) here
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert len(cleaned) == 1
    await server.stop()
    assert len(cleaned) == 1
