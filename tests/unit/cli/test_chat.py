"""`gptoss-modal health` and `gptoss-modal chat`, run in-process against real servers on port 0."""

from __future__ import annotations

import argparse
import io
import re

import pytest
from aiohttp import web

from gptoss_modal.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from gptoss_modal.cli._options import parse_duration
from tests.strategies_stream import (
    VLLM_CONTENT,
    VLLM_ERROR,
    VLLM_FINISH_WITH_TEXT,
    VLLM_REASONING,
    VLLM_ROLE,
    VLLM_TOOL_ARGS,
    VLLM_TOOL_START,
    VLLM_USAGE,
    ReplayServer,
    Reply,
    free_port,
    serve_in_thread,
    vllm_stream,
)

STREAM = vllm_stream(VLLM_ROLE, VLLM_REASONING, VLLM_CONTENT, VLLM_FINISH_WITH_TEXT, VLLM_USAGE)
TOKEN_ID, TOKEN_SECRET = "wk-test-id", "ws-test-secret"  # a made-up Modal proxy auth token


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class ModalProxy(ReplayServer):
    """A replay server behind a stand-in for Modal's proxy auth: 401 without the token."""

    def _authorized(self, request: web.Request) -> bool:
        headers = request.headers
        return (headers.get("Modal-Key"), headers.get("Modal-Secret")) == (TOKEN_ID, TOKEN_SECRET)

    async def _health(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401, text="missing credentials for proxy authorization")
        return await super()._health(request)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.Response(status=401, text="missing credentials for proxy authorization")
        return await super()._chat(request)


@pytest.fixture(autouse=True)
def _no_env_key_and_fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's credentials out, and poll /health every few milliseconds."""
    for name in ("GPTOSS_API_KEY", "GPTOSS_MODAL_KEY", "GPTOSS_MODAL_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("gptoss_modal.stream.client.HEALTH_FIRST_DELAY_S", 0.01)
    monkeypatch.setattr("gptoss_modal.stream.client.HEALTH_MAX_DELAY_S", 0.02)


def test_chat_prints_reasoning_then_content_then_the_timings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Reasoning, a blank line, the content on stdout (no colour off a terminal); the time to
    the first token (and to the first content, when later) and to the last token, tokens and
    tokens/s on stderr; exit 0."""
    with serve_in_thread(ReplayServer(Reply(STREAM))) as server:
        code = main(["chat", server.url, "hello"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK
    assert out == "Let me think\n\nHello world.\n"
    assert "\x1b" not in out + err
    summary = (
        r"time to first token \d\.\d\d s · (time to first content \d\.\d\d s · )?"
        r"time to last token \d\.\d\d s · 8 tokens · (\d+\.\d tokens/s|tokens/s n/a)\n"
    )
    assert re.search(summary, err)


def test_chat_shows_each_tool_call_on_a_line_of_its_own_after_the_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A streamed tool call is printed once complete, as the Responses display prints one."""
    stream = vllm_stream(VLLM_ROLE, VLLM_REASONING, VLLM_TOOL_START, VLLM_TOOL_ARGS, VLLM_USAGE)
    with serve_in_thread(ReplayServer(Reply(stream))) as server:
        code = main(["chat", server.url, "weather?"])
    out, _ = capsys.readouterr()
    assert code == EXIT_OK
    assert out == 'Let me think\n-> get_weather({"city": "Paris"}) [chatcmpl-tool-abc]\n'


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
    frame = re.compile(r"\r\x1b\[K[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] waiting for the first token  \d+\.\d s")
    assert frame.match(drawn)
    assert drawn.rindex("\r\x1b[K") < drawn.index("time to first token")


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


def test_chat_401_hint_names_the_key_and_modal_proxy_auth(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Behind Modal's proxy auth without its token, the 401 message names both fixes: the
    vLLM key, or the Modal-Key/Modal-Secret headers."""
    with serve_in_thread(ModalProxy(Reply(STREAM))) as server:
        code = main(["chat", server.url, "hello"])
    err = capsys.readouterr().err
    assert code == EXIT_FAILURE
    assert "no API key and no Modal-Key/Modal-Secret headers were sent" in err
    assert "vLLM --api-key" in err
    assert "Modal-Key and Modal-Secret headers" in err


def test_chat_and_health_send_repeated_header_options() -> None:
    """--header "NAME: VALUE" (repeatable) goes on /health and on the chat request."""
    headers = ["--header", f"Modal-Key: {TOKEN_ID}", "--header", f"Modal-Secret:{TOKEN_SECRET}"]
    with serve_in_thread(ModalProxy(Reply(STREAM))) as server:
        assert main(["health", server.url, *headers]) == EXIT_OK
        assert main(["chat", server.url, "hi", "--wait", "10s", *headers]) == EXIT_OK
        assert server.health_checks == 2
    sent, _ = server.requests[0]
    assert (sent["Modal-Key"], sent["Modal-Secret"]) == (TOKEN_ID, TOKEN_SECRET)


def test_chat_and_health_read_modal_proxy_auth_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GPTOSS_MODAL_KEY and GPTOSS_MODAL_SECRET are sent as Modal-Key and Modal-Secret (as the
    Modal app's entrypoint does), so the token stays off the command line."""
    monkeypatch.setenv("GPTOSS_MODAL_KEY", TOKEN_ID)
    monkeypatch.setenv("GPTOSS_MODAL_SECRET", TOKEN_SECRET)
    with serve_in_thread(ModalProxy(Reply(STREAM))) as server:
        assert main(["health", server.url]) == EXIT_OK
        assert main(["chat", server.url, "hi"]) == EXIT_OK
    assert "Hello world." in capsys.readouterr().out


def test_a_header_option_replaces_the_environments_in_any_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A --header of the same name (in another case) wins over the environment's token."""
    monkeypatch.setenv("GPTOSS_MODAL_KEY", "wk-stale")
    monkeypatch.setenv("GPTOSS_MODAL_SECRET", TOKEN_SECRET)
    with serve_in_thread(ModalProxy(Reply(STREAM))) as server:
        assert main(["chat", server.url, "hi", "--header", f"modal-key: {TOKEN_ID}"]) == EXIT_OK


@pytest.mark.parametrize("header", ["Modal-Secret ws-not-shown", "Bad Name: ws-not-shown"])
def test_a_malformed_header_is_a_usage_error_that_hides_the_value(
    header: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --header without a colon, or with a name that is not a token, exits 2 before any
    request, and the message never shows the value (it may be a secret)."""
    assert main(["chat", f"http://127.0.0.1:{free_port()}", "hi", "--header", header]) == 2
    err = capsys.readouterr().err
    assert "--header" in err
    assert "ws-not-shown" not in err


def test_half_a_proxy_token_in_the_environment_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GPTOSS_MODAL_KEY without GPTOSS_MODAL_SECRET exits 2 saying what to set."""
    monkeypatch.setenv("GPTOSS_MODAL_KEY", TOKEN_ID)
    assert main(["health", f"http://127.0.0.1:{free_port()}"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "GPTOSS_MODAL_SECRET" in err
    assert TOKEN_ID not in err


def test_health_over_tls_to_a_plain_http_server_fails_at_once_without_the_wait_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """https:// to a plain-HTTP port fails at the first check (no waiting out --wait) with the
    SSL error's own text instead of "Operation not permitted", and no advice to wait."""
    with serve_in_thread(ReplayServer(Reply())) as server:
        https_url = server.url.replace("http://", "https://")
        assert main(["health", https_url, "--wait", "10s"]) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "TLS handshake" in err
    assert "not healthy after" not in err
    assert "Operation not permitted" not in err


def test_chat_to_a_host_that_does_not_resolve_fails_at_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A host that cannot resolve is reported at the first check, even with --wait, and
    without the advice to add --wait."""
    assert main(["chat", "http://nonexistent.invalid", "hi", "--wait", "10s"]) == EXIT_FAILURE
    err = capsys.readouterr().err
    assert "cannot resolve the host 'nonexistent.invalid'" in err
    assert "not healthy after" not in err
    assert "add --wait" not in err


def test_chat_defaults_to_the_clients_stall_timeout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --stall-timeout, chat uses client.DEFAULT_STALL_TIMEOUT_S (one constant)."""
    monkeypatch.setattr("gptoss_modal.stream.client.DEFAULT_STALL_TIMEOUT_S", 0.2)
    writes = [*STREAM[:1], 30.0, *STREAM[1:]]
    with serve_in_thread(ReplayServer(Reply(writes))) as server:
        assert main(["chat", server.url, "hello"]) == EXIT_FAILURE
    assert "no event from" in capsys.readouterr().err


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
