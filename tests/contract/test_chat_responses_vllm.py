"""`gptoss-modal chat --api responses` on each vLLM version's own Responses bytes (built by
``vllm_ops_responses.py`` with that version's classes and serialisation), replayed by a local
server: the display and the JSON lines are the same for 0.13.0's and 0.33.0's wire."""

from __future__ import annotations

import json

import pytest

from gptoss_modal.cli import EXIT_OK, main
from tests.contract._oracle import VllmOracle
from tests.contract.test_client_responses import split_events, vllm_stream
from tests.strategies_stream import ReplayServer, Reply, serve_in_thread

pytestmark = pytest.mark.vllm


def call_id(version: str) -> str:
    """The call id the display shows: the function call's ``output_item.done`` item's, which
    vLLM 0.13.0 makes a fresh ``fc_`` id (``vllm_ops_responses.py`` builds it as ``fc_done1``;
    its added item and the final response carry ``call_`` ids)."""
    return "fc_done1" if version == "0.13.0" else "call_1"


def call_line(version: str) -> str:
    """The display's line for the scripted call."""
    return f'-> get_weather({{"city": "Paris"}}) [{call_id(version)}]'


def test_text_mode_shows_reasoning_answer_call_and_timings(
    vllm_each: VllmOracle, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reasoning, a blank line, the answer, the call, and the timing line with the
    usage's 13 output tokens, from either version's bytes."""
    writes: list[bytes | float | str] = list(split_events(vllm_stream(vllm_each)))
    with serve_in_thread(ReplayServer(Reply(writes))) as server:
        assert main(["chat", server.url, "weather?", "--api", "responses"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert out == f"The user wants weather.\n\nLet me check.\n{call_line(vllm_each.version)}\n"
    assert "time to first token" in err
    assert " 13 tokens " in err


def test_jsonl_mode_gives_the_same_pieces_and_usage(
    vllm_each: VllmOracle, capsys: pytest.CaptureFixture[str]
) -> None:
    """The JSON lines' reasoning and content texts join to the reply, the call is whole, and
    the result line carries vLLM's usage counts (cached and reasoning included)."""
    writes: list[bytes | float | str] = list(split_events(vllm_stream(vllm_each)))
    with serve_in_thread(ReplayServer(Reply(writes))) as server:
        argv = ["chat", server.url, "weather?", "--api", "responses", "--output", "jsonl"]
        assert main(argv) == EXIT_OK
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    text = "".join(r["text"] for r in records if r["type"] == "content")
    reasoning = "".join(r["text"] for r in records if r["type"] == "reasoning")
    assert (reasoning, text) == ("The user wants weather.", "Let me check.")
    (call,) = [r for r in records if r["type"] == "function_call"]
    assert (call["id"], call["name"], json.loads(call["arguments"])) == (
        call_id(vllm_each.version),
        "get_weather",
        {"city": "Paris"},
    )
    usage = records[-1]["usage"]
    assert (usage["input_tokens"], usage["output_tokens"]) == (21, 13)
    assert (usage["cached_tokens"], usage["reasoning_tokens"]) == (16, 4)
