"""The agentic scenario against the real mock: each virtual user's conversation grows turn by
turn (the mock counts the prompt as vLLM would), every tool call the mock makes is valid, and
the run records the scenario, sessions and the server's vLLM version.

Until the mock answers ``tool_choice: "auto"`` agent loops, the user turns name their tool
(``--tool-choice named``), which the mock already calls.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_modal.cli import main
from gptoss_modal.testing.mock_server import spawn_mock_process

pytestmark = pytest.mark.mock_only

TURNS = 4


@pytest.fixture(scope="module")
def fast_mock() -> Iterator[str]:
    """A mock in its own process, quick enough for a few conversations."""
    with spawn_mock_process(["--ttft-ms", "20", "--itl-ms", "1"]) as mock:
        yield mock.url


def _run(url: str, out: Path, *extra: str) -> tuple[int, dict[str, object]]:
    argv = ["bench", url, "--scenario", "agentic", "--turns", str(TURNS), "--tool-choice"]
    argv += ["named", "--concurrency", "1,2", "--quiet", "--output-tokens", "96"]
    argv += ["--json", str(out), *extra]
    code = main(argv)
    return code, json.loads(out.read_text())


def test_agentic_prompts_grow_turn_by_turn_and_every_call_is_valid(
    fast_mock: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per conversation, each turn's prompt is longer than the last; the mock's tool calls are
    all valid (rate 0), and the table, the JSON's settings and its vLLM version say so."""
    code, doc = _run(fast_mock, tmp_path / "run.json")
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "tool calls: all valid" in printed
    assert "prompt tok" in printed
    settings = doc["settings"]
    assert isinstance(settings, dict)
    assert (settings["scenario"], settings["turns"], settings["session_ids"]) == (
        "agentic",
        TURNS,
        True,
    )
    assert doc["vllm_version"]
    levels = doc["levels"]
    assert isinstance(levels, list)
    for level in levels:
        by_conversation: dict[str, list[tuple[int, int]]] = {}
        for record in level["requests"]:
            assert record["ok"], record
            by_conversation.setdefault(record["conversation"], []).append(
                (record["turn"], record["prompt_tokens"])
            )
        for turns in by_conversation.values():
            prompts = [tokens for _, tokens in sorted(turns)]
            assert len(prompts) == TURNS
            assert all(b > a for a, b in itertools.pairwise(prompts)), prompts
        summary = level["summary"]
        calls = summary["tool_calls"]
        assert calls["calls"] >= 1
        assert (calls["invalid"], calls["invalid_rate"]) == (0, 0.0)
        means = [t["prompt_tokens_mean"] for t in summary["turns"]]
        assert means == sorted(means)
        assert len(set(means)) == TURNS


def test_a_tool_call_budget_sets_the_exit_code(
    fast_mock: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tool_call_invalid_rate = 0`` holds when every call is valid (exit 0)."""
    budgets = tmp_path / "b.toml"
    budgets.write_text("[mock.all]\ntool_call_invalid_rate = 0.0\n")
    code, doc = _run(fast_mock, tmp_path / "run.json", "--budgets", str(budgets))
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "PASS  c=1            tool_call_invalid_rate" in printed
    budgets_doc = doc["budgets"]
    assert isinstance(budgets_doc, dict)
    assert budgets_doc["held"] is True
