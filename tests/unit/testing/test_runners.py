"""Running the mock in a thread: a start that cannot bind leaks no event loop."""

from __future__ import annotations

import gc
import warnings
from collections.abc import Callable

import pytest

from gptoss_modal.testing.mock_server import run_mock_in_thread


def resource_warnings(action: Callable[[], None]) -> list[str]:
    """Run ``action`` and collect the ResourceWarnings (unclosed sockets, loops) it left."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        action()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_a_threaded_mock_that_cannot_bind_closes_its_loop(taken_port: int) -> None:
    """``run_mock_in_thread`` on a taken port raises the bind error and leaks no event loop."""

    def start() -> None:
        with (
            pytest.raises(OSError, match=r"(?i)address already in use"),
            run_mock_in_thread(port=taken_port),
        ):
            pass

    assert resource_warnings(start) == []
