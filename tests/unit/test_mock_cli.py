"""``gptoss-modal mock`` and the demo entry point."""

from __future__ import annotations

import urllib.request
from collections.abc import Sequence

import pytest

from gptoss_modal import cli, demo
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


def test_the_demo_says_when_chat_is_not_there_yet(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the chat subcommand the demo exits 1 and says why."""
    monkeypatch.setattr(demo, "subcommand_available", lambda name: False)
    assert demo.main(["chat"]) == cli.EXIT_FAILURE
    assert "not available" in capsys.readouterr().err


def test_the_demo_chats_with_a_running_mock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo runs ``gptoss-modal chat URL PROMPT`` against a mock that is serving."""
    seen: list[list[str]] = []

    def fake_main(argv: Sequence[str] | None = None) -> int:
        args = list(argv or [])
        seen.append(args)
        with urllib.request.urlopen(args[1] + "/health", timeout=10) as response:  # noqa: S310
            return 0 if response.status == 200 else 1

    monkeypatch.setattr(demo, "subcommand_available", lambda name: True)
    monkeypatch.setattr(cli, "main", fake_main)
    assert demo.main(["chat", "hello there"]) == 0
    assert seen[0][0] == "chat"
    assert seen[0][2] == "hello there"
