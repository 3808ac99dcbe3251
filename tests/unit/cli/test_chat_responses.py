"""`gptoss-modal chat --api responses`: the Responses reply shown as chat's is (reasoning, then
the answer, then calls, then the timing line), its JSON lines, its request and its failures,
against a local server replaying vLLM-shaped Responses bytes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from gptoss_modal.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, main
from tests.strategies_stream import DROP, ReplayServer, Reply, serve_in_thread
from tests.unit.cli.test_chat import Terminal
from tests.unit.stream.test_responses import script, wire

REASONING, TEXT, ARGUMENTS = (
    ["The user", " wants weather."],
    ["Let me ", "check."],
    ['{"city": ', '"Paris"}'],
)
EVENTS = script(REASONING, TEXT, ARGUMENTS)
STREAM = wire(EVENTS)
SUMMARY = (
    r"time to first token \d+\.\d\d s · (time to first content \d+\.\d\d s · )?"
    r"time to last token \d+\.\d\d s · 5 tokens · (\d+\.\d tokens/s|tokens/s n/a)\n"
)


def per_event(events: list[dict[str, Any]]) -> list[bytes | float | str]:
    """One write per event, as vLLM's router yields them."""
    return [wire([event]) for event in events]


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's credentials out of the requests."""
    for name in ("GPTOSS_API_KEY", "GPTOSS_MODAL_KEY", "GPTOSS_MODAL_SECRET"):
        monkeypatch.delenv(name, raising=False)


def test_responses_prints_reasoning_answer_call_then_timings(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Reasoning, a blank line, the answer, the function call on its own line (stdout); the
    timing line with the usage's output tokens (stderr); exit 0; the request went to
    /v1/responses."""
    with serve_in_thread(ReplayServer(Reply(per_event(EVENTS)))) as server:
        code = main(["chat", server.url, "weather?", "--api", "responses"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK
    expected_call = '-> get_weather({"city": "Paris"}) [call_1]'
    assert out == f"The user wants weather.\n\nLet me check.\n{expected_call}\n"
    assert re.search(SUMMARY, err), err
    assert "incomplete" not in err
    assert server.requests[0][1]["input"] == "weather?"


def test_responses_dims_the_reasoning_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal each reasoning delta is wrapped in ANSI dim codes, the answer is not."""
    terminal = Terminal()
    monkeypatch.setattr("sys.stdout", terminal)
    events = script(REASONING, TEXT)
    with serve_in_thread(ReplayServer(Reply(per_event(events)))) as server:
        assert main(["chat", server.url, "hi", "--api", "responses"]) == EXIT_OK
    dimmed = "".join(f"\x1b[2m{piece}\x1b[0m" for piece in REASONING)
    assert terminal.getvalue() == f"{dimmed}\n\nLet me check.\n"


def test_responses_sends_instructions_effort_limit_and_tools(tmp_path: Path) -> None:
    """--system is the instructions, --max-tokens max_output_tokens, --tools the tools list,
    --reasoning-effort the reasoning effort; the body asks for a stream."""
    tools = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    tools_file = tmp_path / "tools.json"
    tools_file.write_text(json.dumps(tools))
    argv = ["--api", "responses", "--system", "be brief", "--max-tokens", "9"]
    argv += ["--tools", str(tools_file), "--reasoning-effort", "low"]
    with serve_in_thread(ReplayServer(Reply(per_event(EVENTS)))) as server:
        assert main(["chat", server.url, "hi", *argv]) == EXIT_OK
    body = server.requests[0][1]
    assert (body["instructions"], body["max_output_tokens"], body["stream"]) == (
        "be brief",
        9,
        True,
    )
    assert body["tools"] == tools
    assert body["reasoning"]["effort"] == "low"


def test_responses_jsonl_has_deltas_the_call_and_the_result(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--output jsonl: one line per reasoning and answer delta, the whole function call, then
    the result with its status, usage and timings; each delta's text is what was sent."""
    with serve_in_thread(ReplayServer(Reply(per_event(EVENTS)))) as server:
        argv = ["chat", server.url, "hi", "--api", "responses", "--output", "jsonl"]
        assert main(argv) == EXIT_OK
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    kinds = [r["type"] for r in records]
    assert kinds == ["reasoning", "reasoning", "content", "content", "function_call", "result"]
    assert [r["text"] for r in records[:4]] == [*REASONING, *TEXT]
    call = records[4]
    assert (call["id"], call["name"], call["arguments"]) == (
        "call_1",
        "get_weather",
        "".join(ARGUMENTS),
    )
    result = records[-1]
    assert (result["api"], result["done"], result["status"]) == ("responses", True, "completed")
    assert result["usage"] == {
        "input_tokens": 7,
        "output_tokens": 5,
        "total_tokens": 12,
        "reasoning_tokens": 2,
        "cached_tokens": 3,
    }
    assert result["ttft_s"] is not None
    assert result["ttft_s"] <= result["ttft_content_s"] <= result["ttlt_s"]


def test_an_incomplete_response_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    """A response.incomplete terminal event prints the text and a note with the reason."""
    events = script(REASONING, TEXT, terminal="response.incomplete")
    with serve_in_thread(ReplayServer(Reply(per_event(events)))) as server:
        assert main(["chat", server.url, "hi", "--api", "responses"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out.endswith("Let me check.\n")
    assert "the response is incomplete (max_output_tokens)" in err


def test_a_stream_without_a_terminal_event_fails_keeping_the_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A body that closes before response.completed exits 1 with a one-line error naming the
    missing terminal event, after printing what arrived; never a traceback."""
    writes = per_event(EVENTS[:-1])
    with serve_in_thread(ReplayServer(Reply(writes))) as server:
        code = main(["chat", server.url, "hi", "--api", "responses"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILURE
    assert "Let me check." in out
    assert "terminal event" in err
    assert "Traceback" not in err


def test_a_dropped_connection_writes_an_error_line_in_jsonl(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """In jsonl mode a cut connection leaves every delta before it, then an error line."""
    writes = [*per_event(EVENTS[:5]), DROP]
    with serve_in_thread(ReplayServer(Reply(writes))) as server:
        argv = ["chat", server.url, "hi", "--api", "responses", "--output", "jsonl"]
        assert main(argv) == EXIT_FAILURE
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["type"] for r in records] == ["reasoning", "reasoning", "error"]


@pytest.mark.parametrize("content", ["not json", '{"type": "function"}', "[1]"])
def test_a_bad_tools_file_is_a_usage_error_naming_the_option(
    tmp_path: Path, content: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """--tools must hold a JSON list of objects: otherwise exit 2 naming --tools."""
    path = tmp_path / "tools.json"
    path.write_text(content)
    assert (
        main(["chat", "http://127.0.0.1:9", "hi", "--api", "responses", "--tools", str(path)])
        == EXIT_USAGE
    )
    assert "--tools" in capsys.readouterr().err


def test_a_missing_tools_file_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --tools path that does not exist: exit 2 naming --tools, no traceback."""
    code = main(["chat", "http://127.0.0.1:9", "hi", "--tools", str(tmp_path / "none.json")])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE
    assert "--tools" in err
    assert "Traceback" not in err


def test_a_builtin_tool_call_is_shown_with_its_status_and_input(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A code_interpreter call (a tool server's) shows as a line with its type, status and
    code in text mode, and as a builtin_tool_call record in jsonl."""
    events = script(REASONING, TEXT)
    tool = {"id": "ci_1", "type": "code_interpreter_call", "status": "completed",
            "code": "print(6 * 7)", "container_id": "auto", "outputs": []}  # fmt: skip
    done = {"type": "response.output_item.done", "output_index": 2, "item": tool}
    events = [*events[:-1], done, events[-1]]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    with serve_in_thread(ReplayServer(Reply(per_event(events)))) as server:
        assert main(["chat", server.url, "hi", "--api", "responses"]) == EXIT_OK
        out = capsys.readouterr().out
        jsonl = ["chat", server.url, "hi", "--api", "responses", "--output", "jsonl"]
        assert main(jsonl) == EXIT_OK
    assert out.endswith("Let me check.\n-> code_interpreter_call completed: print(6 * 7)\n")
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    tool_record = next(r for r in records if r["type"] == "builtin_tool_call")
    assert (tool_record["item_type"], tool_record["status"], tool_record["input"]) == (
        "code_interpreter_call",
        "completed",
        "print(6 * 7)",
    )
