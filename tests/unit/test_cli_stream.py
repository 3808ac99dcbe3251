"""`gptoss-modal health` and `gptoss-modal chat`, run in-process against real servers on port 0."""

from __future__ import annotations

import argparse
import io

import pytest

from gptoss_modal.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from gptoss_modal.cli.stream import parse_duration
from tests.strategies_stream import (
    VLLM_CONTENT,
    VLLM_ERROR,
    VLLM_FINISH_WITH_TEXT,
    VLLM_REASONING,
    VLLM_ROLE,
    VLLM_USAGE,
    ReplayServer,
    Reply,
    free_port,
    serve_in_thread,
    vllm_stream,
)

STREAM = vllm_stream(VLLM_ROLE, VLLM_REASONING, VLLM_CONTENT, VLLM_FINISH_WITH_TEXT, VLLM_USAGE)


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _no_env_key_and_fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's GPTOSS_API_KEY out, and poll /health every few milliseconds."""
    monkeypatch.delenv("GPTOSS_API_KEY", raising=False)
    monkeypatch.setattr("gptoss_modal.client.HEALTH_FIRST_DELAY_S", 0.01)
    monkeypatch.setattr("gptoss_modal.client.HEALTH_MAX_DELAY_S", 0.02)


def test_chat_prints_reasoning_then_content_then_the_timings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Reasoning, a blank line, the content on stdout (no colour off a terminal); TTFT, last
    token, tokens and tokens/s on stderr; exit 0."""
    with serve_in_thread(ReplayServer(Reply(STREAM))) as server:
        code = main(["chat", server.url, "hello"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK
    assert out == "Let me think\n\nHello world.\n"
    assert "\x1b" not in out + err
    for part in ("TTFT", "last token", "8 tokens", "tok/s"):
        assert part in err


def test_chat_dims_the_reasoning_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the reasoning is wrapped in ANSI dim codes and the content is not."""
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    with serve_in_thread(ReplayServer(Reply(STREAM))) as server:
        assert main(["chat", server.url, "hello"]) == EXIT_OK
    assert terminal.getvalue() == "\x1b[2mLet me think\x1b[0m\n\nHello world.\n"


def test_chat_shows_a_spinner_on_a_terminal_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    """While waiting for the first token a spinner with the elapsed time is drawn on stderr,
    and its line is cleared before the text starts."""
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    writes = [*STREAM[:1], 0.3, *STREAM[1:]]
    with serve_in_thread(ReplayServer(Reply(writes))) as server:
        assert main(["chat", server.url, "hello"]) == EXIT_OK
    drawn = terminal.getvalue()
    assert "waiting for the first token" in drawn
    assert " s" in drawn
    assert drawn.rindex("\r\x1b[K") < drawn.index("TTFT")


def test_chat_sends_the_options_and_the_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--system, --reasoning-effort, --model and --max-tokens reach the request, and
    GPTOSS_API_KEY is sent as the bearer token."""
    monkeypatch.setenv("GPTOSS_API_KEY", "env-key")
    argv = ["--system", "be brief", "--reasoning-effort", "low", "--model", "llm"]
    with serve_in_thread(ReplayServer(Reply(STREAM))) as server:
        assert main(["chat", server.url, "hi", *argv, "--max-tokens", "9"]) == EXIT_OK
    headers, body = server.requests[0]
    assert headers["Authorization"] == "Bearer env-key"
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert (body["reasoning_effort"], body["model"], body["max_tokens"]) == ("low", "llm", 9)


def test_chat_against_a_dead_url_fails_fast_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Nothing listening: exit 1 at once, saying the connection was refused and how to wait."""
    code = main(["chat", f"http://127.0.0.1:{free_port()}", "hello"])
    err = capsys.readouterr().err
    assert code == EXIT_FAILURE
    assert "cannot connect" in err
    assert "Connection refused" in err
    assert "--wait" in err


def test_chat_with_wait_waits_through_a_cold_start(capsys: pytest.CaptureFixture[str]) -> None:
    """With --wait, /health answering 503 twice then 200 is waited through before chatting."""
    with serve_in_thread(ReplayServer(Reply(STREAM), health=(503, 503, 200))) as server:
        code = main(["chat", server.url, "hello", "--wait", "30s"])
    assert code == EXIT_OK
    assert server.health_checks == 3
    assert "Hello world." in capsys.readouterr().out


def test_chat_401_exits_1_with_a_hint_about_the_key(capsys: pytest.CaptureFixture[str]) -> None:
    """A refused key is a failure (exit 1) whose message says a key was sent and rejected."""
    reply = Reply(status=401, body=b'{"error":"Unauthorized"}')
    with serve_in_thread(ReplayServer(reply)) as server:
        code = main(["chat", server.url, "hello", "--api-key", "wrong-key"])
    err = capsys.readouterr().err
    assert code == EXIT_FAILURE
    assert "401" in err
    assert "API key sent was rejected" in err
    assert "wrong-key" not in err


def test_chat_error_mid_stream_keeps_the_printed_text_and_exits_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """vLLM's in-stream error after some content: the content stays printed, the line is
    ended, and the error is reported with exit 1."""
    with serve_in_thread(
        ReplayServer(Reply(vllm_stream(VLLM_ROLE, VLLM_CONTENT, VLLM_ERROR)))
    ) as s:
        code = main(["chat", s.url, "hello"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILURE
    assert out == "Hello\n"
    assert "the engine died" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["chat", "localhost:8000", "hi"],
        ["chat", "http://127.0.0.1:1", "hi", "--reasoning-effort", "max"],
        ["chat", "http://127.0.0.1:1", "hi", "--wait", "soon"],
        ["chat", "http://127.0.0.1:1"],
        ["health", "http://127.0.0.1:1", "--wait", "-5s"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """A bad URL, effort or duration, or a missing prompt, is a usage error (exit 2)."""
    assert main(argv) == EXIT_USAGE
    assert capsys.readouterr().err


def test_health_reports_a_healthy_server(capsys: pytest.CaptureFixture[str]) -> None:
    """A 200 from /health prints that the server is healthy and exits 0."""
    with serve_in_thread(ReplayServer(Reply())) as server:
        assert main(["health", server.url + "/v1"]) == EXIT_OK
    assert f"{server.url} is healthy" in capsys.readouterr().out


def test_health_of_a_dead_url_exits_1_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    """Without --wait a dead URL is checked once: exit 1, the refusal and the --wait hint."""
    assert main(["health", f"http://127.0.0.1:{free_port()}"]) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "Connection refused" in err
    assert "--wait" in err


def test_health_wait_that_runs_out_exits_1_with_the_last_status(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--wait on a server stuck at 503 ends with exit 1 and the 503 as the last status."""
    with serve_in_thread(ReplayServer(Reply(), health=(503,))) as server:
        assert main(["health", server.url, "--wait", "200ms"]) == EXIT_FAILURE
    assert "503" in capsys.readouterr().err


def test_health_404_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """A URL with no /health (404) fails at once instead of waiting."""
    with serve_in_thread(ReplayServer(Reply(), health=(404,))) as server:
        assert main(["health", server.url, "--wait", "30m"]) == EXIT_FAILURE
        assert server.health_checks == 1
    assert "404" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("90s", 90.0), ("1.5m", 90.0), ("30m", 1800.0), ("2h", 7200.0), ("500ms", 0.5)],
)
def test_durations_accept_common_units(text: str, seconds: float) -> None:
    """--wait and --stall-timeout read plain seconds or s, m, h and ms."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "soon", "-5s", "5 minutes", "1d"])
def test_bad_durations_are_argparse_type_errors(text: str) -> None:
    """Anything else is a type error argparse turns into a usage message."""
    with pytest.raises(argparse.ArgumentTypeError, match="not a duration"):
        parse_duration(text)
