"""``gptoss-modal mock``: usage errors and running in another process."""

from __future__ import annotations

import urllib.request

import pytest

from gptoss_modal import cli
from gptoss_modal.testing.mock_server import spawn_mock_process


def test_a_bad_fault_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown fault exits 2 with the known faults named, before serving anything."""
    assert cli.main(["mock", "--port", "0", "--fault", "explode"]) == cli.EXIT_USAGE
    assert "unknown fault 'explode'" in capsys.readouterr().err


def test_the_mock_runs_in_another_process() -> None:
    """spawn_mock_process starts ``gptoss-modal mock`` and yields a URL that answers."""
    with spawn_mock_process(["--ttft-ms", "0", "--itl-ms", "0"]) as mock:
        with urllib.request.urlopen(mock.url + "/version", timeout=10) as response:  # noqa: S310
            assert response.read() == b'{"version":"0.13.0"}'
        assert mock.cpu_seconds() >= 0
