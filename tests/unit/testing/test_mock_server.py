"""Starting the mock where it cannot bind leaves nothing open: no socket, runner or event loop."""

from __future__ import annotations

import gc
import socket
import warnings
from collections.abc import Callable, Iterator

import pytest
from aiohttp import web

from gptoss_modal.testing.mock_server import MockVLLM, run_mock_in_thread


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another socket is listening on, so the mock's bind fails (EADDRINUSE)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def resource_warnings(action: Callable[[], None]) -> list[str]:
    """Run ``action`` and collect the ResourceWarnings (unclosed sockets, loops) it left."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        action()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


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


def test_a_threaded_mock_that_cannot_bind_closes_its_loop(taken_port: int) -> None:
    """``run_mock_in_thread`` on a taken port raises the bind error and leaks no event loop."""

    def start() -> None:
        with (
            pytest.raises(OSError, match=r"(?i)address already in use"),
            run_mock_in_thread(port=taken_port),
        ):
            pass

    assert resource_warnings(start) == []
