"""Getting the app under test running: the health wait, Ctrl-C, and what kind of start it was.

- :func:`wait_for_start` waits for ``/health`` through Modal's proxy, prints a progress line
  now and then (so a healthy half-hour cold start does not look hung under ``make e2e``) and
  stops after a few 5xx answers in a row: a vLLM that crashes while starting would otherwise
  keep Modal restarting a GPU for the whole wait.
- :func:`ending_the_session_on_ctrl_c` wraps ``app.run()``: Modal's runner catches a
  ``KeyboardInterrupt`` raised inside its block, stops the app and returns normally
  (``modal/runner.py``, ``_run_app``), so pytest would carry on with every test erroring on the
  fixture. This ends the session instead.
- :func:`caches_are_warm` says whether the cache Volumes already hold something, which decides
  whether the cold-start or the warm-start budget applies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import aiohttp
import pytest

from gptoss_modal.stream.client import HealthProgress, wait_healthy

PROGRESS_EVERY_S = 30.0  # one progress line this often during the wait
VERSION_TIMEOUT_S = 30.0


async def wait_for_start(
    url: str,
    *,
    api_key: str | None,
    timeout_s: float,
    max_server_errors: int,
    say: Callable[[str], None] = print,
) -> HealthProgress:
    """Wait for ``url``'s ``/health``; raise at once on a crash loop (see module docstring)."""
    last_said = [float("-inf")]

    def show(progress: HealthProgress) -> None:
        if progress.healthy or progress.elapsed_s - last_said[0] >= PROGRESS_EVERY_S:
            last_said[0] = progress.elapsed_s
            say(
                f"e2e: waiting for {url}/health: {progress.elapsed_s:.0f} s, "
                f"{progress.attempts} checks, last: {progress.last_status}"
            )

    return await wait_healthy(
        url,
        api_key=api_key,
        timeout_s=timeout_s,
        on_progress=show,
        max_server_errors=max_server_errors,
    )


async def served_vllm_version(url: str) -> str:
    """What the deployment's ``/version`` says (vLLM serves it without the API key)."""
    limits = aiohttp.ClientTimeout(total=VERSION_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=limits) as session,
        session.get(f"{url}/version") as response,
    ):
        response.raise_for_status()
        body = await response.json(content_type=None)  # a proxy may drop the type
    return str(body["version"])


@contextlib.contextmanager
def ending_the_session_on_ctrl_c(
    run: contextlib.AbstractContextManager[object],
) -> Iterator[None]:
    """Enter ``run`` (``app.run()``); after a Ctrl-C inside it, end the pytest session."""
    interrupted = False
    with run:
        try:
            yield
        except KeyboardInterrupt:
            interrupted = True
            raise  # Modal's runner stops the app, then swallows it
    if interrupted:
        pytest.exit(
            "e2e: interrupted (Ctrl-C); the app was stopped", returncode=pytest.ExitCode.INTERRUPTED
        )


class Listable(Protocol):
    """What :func:`caches_are_warm` needs of a Modal Volume."""

    def listdir(self, path: str) -> Sequence[object]: ...


def caches_are_warm(volumes: Sequence[Listable]) -> bool:
    """Whether every cache Volume already holds files (weights, compiled graphs, kernels)."""
    return all(volume.listdir("/") for volume in volumes)
