"""`gptoss-modal chat --output jsonl`: one JSON object per channel delta, then the result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gptoss_modal.cli import EXIT_FAILURE, EXIT_OK, main
from gptoss_modal.display import JSONL_SCHEMA
from tests.strategies_stream import (
    VLLM_CONTENT,
    VLLM_ERROR,
    VLLM_FINISH_WITH_TEXT,
    VLLM_REASONING,
    VLLM_ROLE,
    VLLM_USAGE,
    ReplayServer,
    Reply,
    serve_in_thread,
    vllm_stream,
)

STREAM = vllm_stream(VLLM_ROLE, VLLM_REASONING, VLLM_CONTENT, VLLM_FINISH_WITH_TEXT, VLLM_USAGE)


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a developer's credentials out."""
    for name in ("GPTOSS_API_KEY", "GPTOSS_MODAL_KEY", "GPTOSS_MODAL_SECRET"):
        monkeypatch.delenv(name, raising=False)


def _records(out: str) -> list[dict[str, Any]]:
    lines = out.splitlines()
    assert out.endswith("\n")
    return [json.loads(line) for line in lines]


def test_each_delta_is_a_line_then_the_result(capsys: pytest.CaptureFixture[str]) -> None:
    """Reasoning and content arrive as typed lines whose texts join to the reply; the last
    line is the result with its finish reason, usage and timings; stderr has no summary."""
    with serve_in_thread(ReplayServer(Reply(STREAM))) as server:
        code = main(["chat", server.url, "hello", "--output", "jsonl"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK
    records = _records(out)
    *deltas, result = records
    reasoning = "".join(r["text"] for r in deltas if r["type"] == "reasoning")
    content = "".join(r["text"] for r in deltas if r["type"] == "content")
    assert (reasoning, content) == ("Let me think", "Hello world.")
    assert {r["type"] for r in deltas} == {"reasoning", "content"}
    assert all(r["t_s"] >= 0 for r in deltas)
    assert result["type"] == "result"
    assert result["schema"] == JSONL_SCHEMA
    assert result["done"] is True
    assert result["finish_reason"] == "stop"
    assert result["usage"]["completion_tokens"] == 8
    assert result["ttft_s"] is not None
    assert result["ttlt_s"] >= result["ttft_s"]
    assert "time to first token" not in err


def test_a_failure_mid_stream_keeps_the_deltas_and_ends_with_an_error_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """vLLM's in-stream error: the content line stays, an error line names it, exit 1."""
    with serve_in_thread(
        ReplayServer(Reply(vllm_stream(VLLM_ROLE, VLLM_CONTENT, VLLM_ERROR)))
    ) as server:
        code = main(["chat", server.url, "hello", "--output", "jsonl"])
    out, err = capsys.readouterr()
    assert code == EXIT_FAILURE
    records = _records(out)
    assert records[0] == {"type": "content", "text": "Hello", "t_s": records[0]["t_s"]}
    assert records[-1]["type"] == "error"
    assert records[-1]["error"] == "UpstreamError"
    assert "the engine died" in records[-1]["message"]
    assert "the engine died" in err


def test_text_output_is_unchanged_by_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    """The partner: --output text (the default) still prints plain text, no JSON."""
    with serve_in_thread(ReplayServer(Reply(STREAM))) as server:
        assert main(["chat", server.url, "hello", "--output", "text"]) == EXIT_OK
    assert capsys.readouterr().out == "Let me think\n\nHello world.\n"
