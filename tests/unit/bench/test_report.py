"""The benchmark's output: terminal tables, budget lines, the comparison of two runs, the plot
and the `gptoss-modal bench` command's exit codes (everything here runs without a network)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from gptoss_modal.bench.budgets import parse_budgets
from gptoss_modal.bench.report import (
    Change,
    compare_runs,
    render_budgets,
    render_comparison,
    render_run,
)
from gptoss_modal.bench.schema import RunDoc, decode_run, encode_run
from gptoss_modal.bench.settings import Level
from gptoss_modal.bench.stats import LATENCY_METRICS
from gptoss_modal.cli import main
from tests.unit.bench.scripted import ScriptedClient, run


@pytest.fixture(scope="session")
def run_json() -> bytes:
    """A two-level run on the scripted server (its scripted clock makes it the same every
    time), with budgets, as its JSON file; run once per worker, not once per test."""
    budgets = parse_budgets(
        {"g": {"source": "unit test", "all": {"tpot_p50_ms": 11, "min_output_tokens_per_s": 1e9}}}
    ).section("g")
    result = asyncio.run(run(ScriptedClient(), levels=(Level(1), Level(4)), budgets=budgets))
    return encode_run(result.to_doc())


@pytest.fixture
def doc(run_json: bytes) -> RunDoc:
    """That run's document as read back from a file: each test's own copy, to change."""
    return decode_run(run_json)


def copied(doc: RunDoc) -> RunDoc:
    """A deep copy of a document, to change without touching the original."""
    return decode_run(encode_run(doc))


@pytest.fixture
def saved(tmp_path: Path, run_json: bytes) -> Path:
    path = tmp_path / "a.json"
    path.write_bytes(run_json)
    return path


def test_the_table_shows_each_level_and_each_latency(doc: RunDoc) -> None:
    """Every level gets a throughput row and a row per latency metric it measured."""
    text = render_run(doc)
    for label in ("c=1", "c=4"):
        assert label in text
    for metric in ("ttft_chunk", "ttft", "ttft_content", "tpot", "itl", "e2e"):
        assert f" {metric} " in text
    assert "queue" not in text  # closed loop: no client queueing to show


def test_budget_lines_say_pass_or_fail_with_the_limit(doc: RunDoc) -> None:
    """Each check is a PASS or FAIL line with what was measured and the limit; then a verdict."""
    text = render_budgets(doc)
    assert "budgets [g] (unit test)" in text
    assert "PASS  c=1" in text
    assert "FAIL  c=4" in text
    assert "(limit >= 1e+09)" in text
    assert text.splitlines()[-1] == "budgets FAILED: 2 of 4 checks"


def test_errors_are_listed_by_kind(doc: RunDoc) -> None:
    """A level with failures lists them by kind under the tables."""
    doc.levels[0].summary.errors = {"http_503": 2}
    assert "c=1: http_503 x2" in render_run(doc)


def test_a_run_compared_with_itself_is_the_same(doc: RunDoc) -> None:
    """Comparing a run with itself reports no change anywhere."""
    changes, unmatched = compare_runs(doc, doc)
    assert unmatched == []
    assert changes
    assert {c.verdict for c in changes} <= {"same", "-"}


def test_comparison_knows_which_direction_is_better(doc: RunDoc) -> None:
    """Lower latency and higher throughput are better; the opposite is worse."""
    b = copied(doc)
    summary = b.levels[0].summary
    ttft = summary.latency_ms["ttft"]
    assert ttft is not None
    ttft.p50 *= 0.5
    summary.output_tokens_per_s *= 0.5
    changes = {(c.level, c.metric): c for c in compare_runs(doc, b)[0]}
    assert changes[("c=1", "ttft p50 ms")].verdict == "better"
    assert changes[("c=1", "ttft p50 ms")].relative == pytest.approx(-0.5)
    assert changes[("c=1", "output tokens/s")].verdict == "worse"


def test_levels_in_only_one_run_are_named(doc: RunDoc) -> None:
    """A level present in one run only is listed as not compared."""
    b = copied(doc)
    b.levels = b.levels[:1]
    text = render_comparison(doc, b)
    assert "not compared: c=4 only in A" in text


def test_a_change_from_zero_has_no_ratio() -> None:
    """A zero baseline gives no relative change (not a division error)."""
    change = Change("c=1", "error rate", 0.0, 0.1, "lower")
    assert change.relative is None
    assert change.verdict == "-"
    assert Change("c=1", "error rate", 0.0, 0.0, "lower").verdict == "same"


def test_every_latency_metric_is_in_the_json(doc: RunDoc) -> None:
    """The JSON summary has an entry per latency metric (None where not measured)."""
    summary = doc.levels[0].summary
    assert list(summary.latency_ms) == list(LATENCY_METRICS)


@pytest.mark.xdist_group("matplotlib")  # with tests/unit/bench/test_plot.py: one worker imports it
def test_the_plot_is_a_png(tmp_path: Path, doc: RunDoc) -> None:
    """plot_runs writes a PNG of one or two runs."""
    pytest.importorskip("matplotlib")
    from gptoss_modal.bench.plot import plot_runs

    path = tmp_path / "p.png"
    plot_runs([("a", doc), ("b", doc)], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the command --------------------------------------------------------------------------------


def test_compare_prints_the_changes(saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bench compare A B` prints each metric's change and exits 0."""
    assert main(["bench", "compare", str(saved), str(saved)]) == 0
    out = capsys.readouterr().out
    assert "output tokens/s" in out
    assert "same" in out


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "compare", "one.json"],
        ["bench", "http://x", "extra"],
        ["bench", "http://x", "--requests", "3", "--duration", "5s"],
        ["bench", "http://x", "--gpu", "T4"],  # no list price, no --gpu-price, no budgets
        ["bench", "http://x", "--compare-price", "0.19/M"],  # nothing to compare without --gpu
        ["bench", "http://x", "--gpu", "B200", "--gpu-price", "cheap"],
        ["bench", "http://x", "--format", "vllm"],  # needs --json
        ["bench", "http://x", "--concurrency", "0"],
        ["bench", "http://x", "--duration", "soon"],
        ["bench", "http://x", "--header", "no-colon"],
        ["bench", "http://x", "--reasoning-effort", "max"],
    ],
)
def test_bad_usage_exits_2_before_any_request(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Wrong flags or arguments exit 2 with a message, without contacting a server."""
    assert main(argv) == 2
    assert capsys.readouterr().err


def test_a_bad_budgets_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A budgets file with an unknown key fails the command before the run, naming the key."""
    path = tmp_path / "b.toml"
    path.write_text("[g.all]\nttft_p42_ms = 5\n")
    assert main(["bench", "http://127.0.0.1:9", "--budgets", str(path)]) == 2
    assert "g.all.ttft_p42_ms" in capsys.readouterr().err


def test_plot_without_matplotlib_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--plot without matplotlib exits 2 at once with the pip command for the extra."""
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["bench", "http://127.0.0.1:9", "--plot", "x.png"]) == 2
    assert "gptoss-modal[plot]" in capsys.readouterr().err


async def test_an_agentic_run_shows_its_calls_turns_and_cache() -> None:
    """The agentic tables appear (calls with the rate's error, each turn's prompt and cache)
    and say when calls were invalid; a chat run has none of them."""
    from gptoss_modal.bench.report import render_agentic, render_run

    client = ScriptedClient()
    client.report_cached = True
    client.tool_faults = {1: "unknown"}
    result = await run(client, scenario="agentic", turns=2, requests=None)
    text = render_run(result.to_doc(records=False))
    assert "agentic (2 turns, tool_choice auto)  Modal-Session-ID on" in text
    assert "INVALID TOOL CALLS: 1" in text
    assert "unknown_tool x1" in text
    assert "95% Wilson" in text
    assert "cache hit" in text
    turns = [line for line in text.splitlines() if line.startswith(("c=2 ", "     "))]
    assert any(line.split()[:2] == ["c=2", "0"] for line in turns)
    chat = await run(ScriptedClient())
    assert render_agentic(chat.to_doc(records=False)) == ""


async def test_a_chat_run_with_cache_share_says_no_tool_calls_were_made() -> None:
    """A run that measured the cache share but made no tool calls says so, not "all valid"."""
    from gptoss_modal.bench.report import render_agentic

    client = ScriptedClient()
    client.report_cached = True
    text = render_agentic((await run(client)).to_doc(records=False))
    assert "cache hit" in text
    assert "tool calls: none made" in text
    assert "all valid" not in text
