"""Run the stub's gRPC server and blob HTTP server on an event loop in a background thread, so
synchronous tests can drive the real ``modal`` CLI in a subprocess against it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

__all__ = ["LoopThread"]

T = TypeVar("T")
START_TIMEOUT_S = 10.0  # binding two loopback sockets takes milliseconds
STOP_TIMEOUT_S = 10.0


class LoopThread:
    """An asyncio loop in a daemon thread; coroutines are run on it with a bounded wait."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, make: Callable[[], Awaitable[T]], timeout_s: float = START_TIMEOUT_S) -> T:
        """Run ``make()`` on the loop and wait for its result (at most ``timeout_s``)."""

        async def wrapper() -> T:
            return await make()

        future: Future[T] = asyncio.run_coroutine_threadsafe(wrapper(), self._loop)
        return future.result(timeout=timeout_s)

    def call_soon(self, func: Callable[..., Any], *args: Any) -> None:
        """Schedule ``func`` on the loop from any thread."""
        self._loop.call_soon_threadsafe(func, *args)

    def close(self) -> None:
        """Stop the loop and join its thread (bounded)."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=STOP_TIMEOUT_S)
        if not self._thread.is_alive():
            self._loop.close()
