"""The demo entry point behind ``make demo``: the mock and ``gptoss-modal chat`` together."""

from __future__ import annotations

import urllib.request
from collections.abc import Sequence

import pytest

from gptoss_modal import cli, demo


@pytest.fixture
def chat_argv(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Replace the CLI with one that records its argv and checks the mock serves /health."""
    seen: list[list[str]] = []

    def fake_main(argv: Sequence[str] | None = None) -> int:
        args = list(argv or [])
        seen.append(args)
        if "--wait" in args:  # the mock is still "cold": the real chat would wait for it
            return 0
        with urllib.request.urlopen(args[1] + "/health", timeout=10) as response:  # noqa: S310
            return 0 if response.status == 200 else 1

    monkeypatch.setattr(cli, "main", fake_main)
    return seen


def test_the_demo_chats_with_a_running_mock(chat_argv: list[list[str]]) -> None:
    """The demo runs ``gptoss-modal chat URL PROMPT`` against a mock that is serving, and
    without a cold start does not ask it to wait."""
    assert demo.main(["chat", "hello there"]) == 0
    assert chat_argv[0][0] == "chat"
    assert chat_argv[0][2] == "hello there"
    assert "--wait" not in chat_argv[0]


def test_a_simulated_cold_start_makes_the_chat_wait_past_it(chat_argv: list[list[str]]) -> None:
    """With --cold-start-s N the chat is told to wait N + 30 s for /health."""
    assert demo.main(["chat", "hi", "--cold-start-s", "2.5"]) == 0
    assert chat_argv[0][-2:] == ["--wait", "32.5s"]


def test_the_demo_chat_gets_through_a_cold_start(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """For real: the mock answers 503 on /health during its cold start, and the chat waits
    through it and prints the reply instead of failing with the 503."""
    # The demo's gpt-oss-like pacing (300 ms, then 15 ms a token) is for watching; unpaced,
    # the reply still streams, and the wait is the cold start's alone.
    monkeypatch.setattr(demo, "DEMO_TTFT_MS", 0.0)
    monkeypatch.setattr(demo, "DEMO_ITL_MS", 0.0)
    assert demo.main(["chat", "hi", "--cold-start-s", "0.5"]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    assert out.strip()
    assert "time to first token" in err


def test_demo_bench_passes_bench_options_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """Options after `demo bench` (such as --json) reach `gptoss-modal bench` unchanged."""
    seen: list[list[str]] = []

    def run_bench(extra: list[str]) -> int:
        seen.append(list(extra))
        return 0

    monkeypatch.setattr(demo, "run_bench", run_bench)
    assert demo.main(["bench", "--json", "run.json", "--plot", "run.png"]) == 0
    assert seen == [["--json", "run.json", "--plot", "run.png"]]


def test_demo_chat_refuses_unknown_options() -> None:
    """An option `demo chat` does not know is a usage error, not silently dropped."""
    with pytest.raises(SystemExit) as exit_:
        demo.main(["chat", "hi", "--json", "x"])
    assert exit_.value.code == 2


def test_demo_bench_runs_the_short_default_levels(monkeypatch: pytest.MonkeyPatch) -> None:
    """`demo bench` runs the bench at its default request count (no --requests 64: minutes)
    against a live mock, and the options given after it come last."""
    seen: list[list[str]] = []

    def fake_main(argv: Sequence[str] | None = None) -> int:
        seen.append(list(argv or []))
        return 0

    monkeypatch.setattr(cli, "main", fake_main)
    assert demo.main(["bench", "--json", "x.json"]) == 0
    argv = seen[0]
    assert argv[0] == "bench"
    assert argv[2:] == [*demo.BENCH_ARGS, "--json", "x.json"]
    assert "--requests" not in argv
