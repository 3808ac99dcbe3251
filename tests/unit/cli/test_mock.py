"""``gptoss-modal mock``: usage errors and running in another process."""

from __future__ import annotations

import gc
import json
import urllib.request
import warnings

import pytest

from gptoss_modal import cli
from gptoss_modal.testing.mock_server import spawn_mock_process


def test_a_bad_fault_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown fault exits 2 with the known faults named, before serving anything."""
    assert cli.main(["mock", "--port", "0", "--fault", "explode"]) == cli.EXIT_USAGE
    assert "unknown fault 'explode'" in capsys.readouterr().err


CHAT = json.dumps(
    {"model": "llm", "messages": [{"role": "user", "content": "hi"}], "stream": True}
).encode()
MAX_BATCHES = 50  # bounds the loop below; the clock ticks every 10 ms and a batch takes more


def _chat(url: str) -> bytes:
    request = urllib.request.Request(  # noqa: S310 - a local mock
        url + "/v1/chat/completions", data=CHAT, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body: bytes = response.read()
        return body


def test_the_mock_runs_in_another_process() -> None:
    """spawn_mock_process starts ``gptoss-modal mock``: its URL answers, and its CPU clock is
    the server's own (it has counted its start-up, and it grows as it serves streams)."""
    with spawn_mock_process(["--ttft-ms", "0", "--itl-ms", "0"]) as mock:
        with urllib.request.urlopen(mock.url + "/version", timeout=10) as response:  # noqa: S310
            assert response.read() == b'{"version":"0.13.0"}'
        before = mock.cpu_seconds()
        assert before > 0  # importing aiohttp and the package alone takes tens of ms
        for _ in range(MAX_BATCHES):
            for _ in range(20):
                assert _chat(mock.url).endswith(b"data: [DONE]\n\n")
            if mock.cpu_seconds() > before:
                break
        assert mock.cpu_seconds() > before


def test_the_spawned_mock_leaves_no_pipe_open() -> None:
    """Once spawn_mock_process's block ends, the child's stdout pipe is closed, not leaked."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with spawn_mock_process(["--ttft-ms", "0"]) as mock:
            assert mock.pid > 0
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
