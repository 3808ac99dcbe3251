"""The agentic scenario against the real mock, in both vLLM versions' wire formats.

The mock answers ``tool_choice: "auto"`` as an agent loop expects and injects tool-call faults
at exact, known counts (``MockVLLM.tool_faults_applied``), so the bench's invalid-tool-call
count must equal the mock's applied count, land in the category each fault belongs to, and the
Wilson interval the bench reports must hold the configured rate. With vLLM's
``--enable-prompt-tokens-details`` the mock reports prefix-cache hits, which grow turn by turn;
without it the bench says "not reported", never 0. ``Modal-Session-ID`` is one per user.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import io
import itertools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import pytest

from gptoss_modal.cli import main
from gptoss_modal.serve.options import VllmVersion
from gptoss_modal.testing.mock_server import MockConfig, ThreadedMock, run_mock_in_thread

pytestmark = pytest.mark.mock_only

TURNS: Final = 4
USERS: Final = 4
# 8 conversations of TURNS turns per level, 16 to 21 tool-call turns: enough that each fault
# case applies at least 3 faults and the mix each of its kinds (the counts are exact, so more
# requests would cost CPU without proving more).
REQUESTS: Final = 32
VERSIONS: Final[tuple[VllmVersion, ...]] = ("0.33.0", "0.13.0")


def _problems(kind: str, version: str) -> tuple[str, ...]:
    """The validity problems one injected fault of ``kind`` must be counted under."""
    if kind == "args-length":  # 0.13.0's stream ends in an error event with the call open
        return ("not_json", "upstream_400") if version == "0.13.0" else ("cut_by_max_tokens",)
    if kind == "harmony-error":  # 0.13.0 sends a 400 BadRequestError event, 0.33.0 a 500
        return ("upstream_400",) if version == "0.13.0" else ("upstream_500",)
    return {
        "name-leak": ("harmony_leak", "unknown_tool"),
        "content-leak": ("harmony_leak",),
        "args-short": ("not_json",),
    }[kind]


# 0.33.0 streams the cut arguments, which are not JSON either.
_ALSO: Final = {("args-length", "0.33.0"): ("not_json",)}

FAULT_CASES: Final[dict[str, dict[str, float]]] = {
    "name-leak": {"tool_name_leak_rate": 0.2},
    "args-short": {"tool_args_short_rate": 0.2},
    "args-length": {"tool_args_length_rate": 0.25},
    "harmony-error": {"harmony_error_rate": 0.2},
    "content-leak": {"tool_content_leak_rate": 0.2},
    "mix": {"tool_name_leak_rate": 0.1, "tool_args_short_rate": 0.1, "harmony_error_rate": 0.1},
}


def _mock(version: VllmVersion, **config: Any) -> contextlib.AbstractContextManager[ThreadedMock]:
    """A fast mock of ``version`` in a thread of this process, so its counters can be read."""
    return run_mock_in_thread(MockConfig(vllm_version=version, ttft_ms=5.0, itl_ms=0.5, **config))


def _run(url: str, out: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    """``gptoss-modal bench URL --scenario agentic`` in-process (default ``tool_choice``)."""
    argv = ["bench", url, "--scenario", "agentic", "--turns", str(TURNS), "--quiet"]
    argv += ["--output-tokens", "96", "--json", str(out)]
    argv += extra
    if "--concurrency" not in extra:
        argv += ["--concurrency", str(USERS), "--requests", str(REQUESTS)]
    code = main(argv)
    return code, json.loads(out.read_text())


@dataclasses.dataclass(frozen=True)
class _Run:
    """One bench run against a fresh mock: exit code, JSON, stdout and the mock's counters."""

    code: int
    doc: dict[str, Any]
    printed: str
    applied: dict[str, int]
    planned: int


# The tests of the shared runs go to one xdist worker, so each run is made once per `make test`.
_SHARED = pytest.mark.xdist_group("bench-agentic-plain")


_TOOL_CALL_BUDGET: Final = "[mock.all]\ntool_call_invalid_rate = 0.01\n"


@pytest.fixture(scope="module", params=VERSIONS)
def plain_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> _Run:
    """One run per version without faults or prompt-token details, shared by the tests that read
    different parts of it; it carries a ``tool_call_invalid_rate = 0.01`` budget, which only
    adds the budget's verdict to what the run prints and writes."""
    version: VllmVersion = request.param
    out = tmp_path_factory.mktemp("plain-run")
    budgets = out / "b.toml"
    budgets.write_text(_TOOL_CALL_BUDGET)
    capture = io.StringIO()
    with _mock(version) as mock, contextlib.redirect_stdout(capture):
        code, doc = _run(mock.url, out / "run.json", "--budgets", str(budgets))
        applied, planned = mock.server.tool_faults_applied, mock.server.tool_calls_planned
    return _Run(code, doc, capture.getvalue(), dict(applied), planned)


def _only_level(doc: Mapping[str, Any]) -> dict[str, Any]:
    levels = doc["levels"]
    assert len(levels) == 1
    summary: dict[str, Any] = levels[0]["summary"]
    return summary


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(FAULT_CASES))
def test_invalid_tool_calls_equal_the_faults_the_mock_applied(
    case: str, version: VllmVersion, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bench's invalid count is the mock's exact applied count, its attempts the mock's
    tool-call turns, each fault is counted under its own problems, and the reported Wilson
    interval holds the configured rate."""
    rates = FAULT_CASES[case]
    with _mock(version, **rates) as mock:
        code, doc = _run(mock.url, tmp_path / "run.json")
        applied = mock.server.tool_faults_applied
        planned = mock.server.tool_calls_planned
    printed = capsys.readouterr().out
    assert code == 0, printed
    calls = _only_level(doc)["tool_calls"]
    assert sum(applied.values()) >= 2, applied  # enough faults for the test to mean something
    assert (calls["calls"], calls["invalid"]) == (planned, sum(applied.values()))
    expected: collections.Counter[str] = collections.Counter()
    for kind, count in applied.items():
        for problem in _problems(kind, version) + _ALSO.get((kind, version), ()):
            expected[problem] += count
    assert calls["problems"] == dict(expected)
    assert calls["wilson_low"] <= sum(rates.values()) <= calls["wilson_high"], calls
    assert calls["invalid_rate"] == pytest.approx(sum(applied.values()) / planned)
    assert "INVALID TOOL CALLS" in printed


@_SHARED
def test_without_faults_every_tool_call_is_valid(plain_run: _Run) -> None:
    """No fault rates: the mock applied none and the bench counts every call valid (rate 0)."""
    assert plain_run.code == 0, plain_run.printed
    calls = _only_level(plain_run.doc)["tool_calls"]
    assert sum(plain_run.applied.values()) == 0
    planned = plain_run.planned
    assert (calls["calls"], calls["invalid"], calls["invalid_rate"]) == (planned, 0, 0.0)
    assert planned >= REQUESTS // 2 - USERS  # most user turns called a tool
    assert "tool calls: all valid" in plain_run.printed


def _cached_by_conversation(doc: Mapping[str, Any]) -> Iterator[list[int | None]]:
    for level in doc["levels"]:
        by_conversation: dict[str, list[tuple[int, int | None]]] = {}
        for record in level["requests"]:
            assert record["ok"], record
            by_conversation.setdefault(record["conversation"], []).append(
                (record["turn"], record.get("cached_tokens"))
            )
        for turns in by_conversation.values():
            yield [cached for _, cached in sorted(turns)]


@pytest.mark.parametrize("version", VERSIONS)
def test_prompt_token_details_show_the_cache_growing_turn_by_turn(
    version: VllmVersion, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the mock's prompt-token details on, each conversation's cached tokens grow turn by
    turn, the per-turn means grow, and the level's cache hit share is above 0 in JSON and
    table."""
    with _mock(version, enable_prompt_tokens_details=True) as mock:
        code, doc = _run(mock.url, tmp_path / "run.json")
    printed = capsys.readouterr().out
    assert code == 0, printed
    for cached in _cached_by_conversation(doc):
        # Turn 0 may hit blocks another conversation wrote (the system prompt and tools), and a
        # turn may hit no more than the last (a prompt's tail block is not full): never fewer.
        hits = [c or 0 for c in cached]
        assert all(c is not None for c in cached[1:]), cached  # a later turn always hits
        assert all(b >= a for a, b in itertools.pairwise(hits)), cached
        if len(hits) == TURNS:  # a level's last conversations may be cut short
            assert hits[-1] > hits[0], cached
    summary = _only_level(doc)
    means = [t["cached_tokens_mean"] for t in summary["turns"]]
    assert all(m is not None for m in means), means
    assert means == sorted(means), means
    assert means[-1] > means[0], means
    assert 0 < summary["cache"]["hit_share"] < 1
    share = f"{summary['cache']['hit_share']:.1%}"
    assert any(line.startswith("c=4") and share in line for line in printed.splitlines())


@_SHARED
def test_without_prompt_token_details_the_cache_is_not_reported(plain_run: _Run) -> None:
    """Without the flag no record, turn or level reports cached tokens (``None``, not 0), and
    the table's cache columns say "-"."""
    assert plain_run.code == 0, plain_run.printed
    doc = plain_run.doc
    assert all(c is None for cached in _cached_by_conversation(doc) for c in cached)
    summary = _only_level(doc)
    assert summary.get("cache") is None  # absent: not reported
    assert {(t["cached_tokens_mean"], t["cache_hit_share"]) for t in summary["turns"]} == {
        (None, None)
    }
    lines = plain_run.printed.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("level  turn  requests"))
    rows = list(itertools.takewhile(bool, lines[header + 2 :]))
    assert len(rows) == TURNS
    for row in rows:  # ... prompt tok, cached tok, cache hit, ttft, tpot, e2e
        assert row.split()[-5:-3] == ["-", "-"], row


@pytest.mark.parametrize(
    ("flag", "per_level"), [("--session-id", True), ("--no-session-id", False)]
)
def test_one_session_id_per_virtual_user_per_level(
    flag: str, per_level: bool, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``Modal-Session-ID`` on: the mock saw one id per virtual user of each level, each on all
    of that user's turns; off: none."""
    with _mock("0.33.0") as mock:
        code, doc = _run(mock.url, tmp_path / "run.json", flag, "--concurrency", "1,3")
        sessions = mock.server.session_requests
        distinct = mock.server.distinct_sessions
    assert code == 0, capsys.readouterr().out
    assert doc["settings"].get("session_ids", False) is per_level
    if not per_level:
        assert (distinct, sessions) == (0, {})
        return
    assert distinct == 1 + 3
    by_level = collections.Counter(session.rsplit("-", 2)[-2] for session in sessions)
    assert by_level == {"0": 1, "1": 3}, sessions  # ids are <run>-<level index>-<user>
    assert set(sessions.values()) == {TURNS}  # each user ran one conversation of TURNS turns


@_SHARED
@pytest.mark.parametrize("plain_run", ["0.33.0"], indirect=True)
def test_agentic_prompts_grow_turn_by_turn(plain_run: _Run) -> None:
    """Per conversation, each turn's prompt is longer than the last, and the JSON records the
    scenario, turns, sessions and the server's vLLM version."""
    assert plain_run.code == 0, plain_run.printed
    assert "prompt tok" in plain_run.printed
    doc = plain_run.doc
    settings = doc["settings"]
    assert (settings["scenario"], settings["turns"], settings["session_ids"]) == (
        "agentic",
        TURNS,
        True,
    )
    assert settings["tool_choice"] == "auto"
    assert doc["vllm_version"] == "0.33.0"
    for level in doc["levels"]:
        by_conversation: dict[str, list[tuple[int, int]]] = {}
        for record in level["requests"]:
            by_conversation.setdefault(record["conversation"], []).append(
                (record["turn"], record["prompt_tokens"])
            )
        for turns in by_conversation.values():
            prompts = [tokens for _, tokens in sorted(turns)]
            assert 1 <= len(prompts) <= TURNS
            assert all(b > a for a, b in itertools.pairwise(prompts)), prompts


def _check_tool_call_budget(
    code: int, doc: Mapping[str, Any], printed: str, exit_code: int
) -> None:
    """The run's exit code, verdict line and JSON say whether the tool-call budget held."""
    assert code == exit_code, printed
    verdict = "PASS" if exit_code == 0 else "FAIL"
    assert f"{verdict}  c={USERS}            tool_call_invalid_rate" in printed
    assert doc["budgets"]["held"] is (exit_code == 0)


@_SHARED
@pytest.mark.parametrize("plain_run", ["0.33.0"], indirect=True)
def test_a_tool_call_budget_holds_without_faults(plain_run: _Run) -> None:
    """``tool_call_invalid_rate = 0.01`` holds without faults (exit 0), through the CLI
    in-process."""
    _check_tool_call_budget(plain_run.code, plain_run.doc, plain_run.printed, 0)


def test_a_tool_call_budget_fails_with_name_leaks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tool_call_invalid_rate = 0.01`` fails with the mock's name leaks (exit 1), through the
    CLI in-process."""
    budgets = tmp_path / "b.toml"
    budgets.write_text(_TOOL_CALL_BUDGET)
    with _mock("0.33.0", tool_name_leak_rate=0.2) as mock:
        code, doc = _run(mock.url, tmp_path / "run.json", "--budgets", str(budgets))
    _check_tool_call_budget(code, doc, capsys.readouterr().out, 1)
