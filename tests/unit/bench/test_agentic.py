"""The agentic workload: seeded conversations whose history grows, tool results synthesised from
the arguments, the Responses API's input items, sessions, and runs on scripted clients."""

from __future__ import annotations

import json

import pytest

from gptoss_modal import ChatChunk, ChatResult, Choice, Delta, Usage
from gptoss_modal._exceptions import ConfigError, UpstreamError
from gptoss_modal.bench.agentic import (
    SESSION_HEADER,
    TOOLS,
    AgenticWorkload,
    Conversation,
    response_input,
    synthesise,
)
from gptoss_modal.bench.records import record_request
from gptoss_modal.bench.settings import Level
from gptoss_modal.bench.workload import Sent
from gptoss_modal.stream.chunks import FunctionDelta, ToolCallDelta
from tests.unit.bench.scripted import ScriptedClient, run, settings


def _call_reply(name: str, arguments: str) -> Sent:
    result = ChatResult()
    call = ToolCallDelta(index=0, id="c1", type="function", function=FunctionDelta(name, arguments))
    choice = Choice(index=0, delta=Delta(tool_calls=(call,)), finish_reason="tool_calls")
    result.chunks.append(ChatChunk(choices=(choice,), usage=Usage(10, 5, 15)))
    result.done = True
    return Sent(result)


def _answer(text: str) -> Sent:
    result = ChatResult()
    choice = Choice(index=0, delta=Delta(content=text), finish_reason="stop")
    result.chunks.append(ChatChunk(choices=(choice,)))
    result.done = True
    return Sent(result)


def test_the_same_seed_gives_the_same_conversation() -> None:
    """Two conversations with one seed and key ask the same questions; another key does not."""
    a, b = Conversation("0/0/1", "7"), Conversation("0/0/1", "7")
    other = [Conversation(f"0/{u}/1", "7").messages[-1]["content"] for u in range(1, 9)]
    assert a.messages == b.messages
    assert any(question != a.messages[-1]["content"] for question in other)


def test_each_turn_sends_the_whole_history_and_it_grows() -> None:
    """A call's reply adds the assistant message and a tool result; the answer, then a new
    question; every request has more messages than the one before."""
    conversation = Conversation("0/0/1", "0", tool_choice="named")
    sizes = []
    first = conversation.request()
    assert first.expects_call
    assert isinstance(first.tool_choice, dict)
    name = first.tool_choice["function"]["name"]
    for sent in (_call_reply(name, '{"city": "Paris"}'), _answer("It is sunny."), _answer("x")):
        sizes.append(len(conversation.request().messages))
        conversation.absorb(sent)
    sizes.append(len(conversation.request().messages))
    assert sizes == sorted(sizes)
    assert len(set(sizes)) == len(sizes)
    assistant, tool = conversation.messages[2], conversation.messages[3]
    assert assistant["tool_calls"][0]["function"]["name"] == name
    assert tool == {
        "role": "tool",
        "tool_call_id": "c1",
        "content": synthesise(name, '{"city": "Paris"}'),
    }
    follow_up = Conversation("0/0/1", "0")
    follow_up.absorb(_call_reply(name, "{}"))
    assert follow_up.request().tool_choice == "auto"
    assert not follow_up.request().expects_call


def test_a_failed_turn_keeps_the_history_and_asks_again() -> None:
    """A failure adds no reply; the next turn is a new question."""
    conversation = Conversation("0/0/1", "0")
    before = list(conversation.messages)
    conversation.absorb(Sent(ChatResult(), UpstreamError("boom")))
    assert conversation.messages[: len(before)] == before
    assert conversation.messages[-1]["role"] == "user"
    assert len(conversation.messages) == 3


def test_tool_results_are_made_from_the_arguments_alone() -> None:
    """The same arguments give the same result, other arguments another; none names a tool."""
    same = synthesise("get_weather", '{"city": "Paris"}')
    assert same == synthesise("get_weather", '{"city": "Paris"}')
    assert same != synthesise("get_weather", '{"city": "Oslo"}')
    assert "error" in json.loads(synthesise("get_weather", "{"))
    names = [t["function"]["name"] for t in TOOLS]
    assert not any(n in synthesise(n, '{"city": "a", "query": "b"}') for n in names)


def test_the_history_becomes_responses_input_items() -> None:
    """System text is the instructions; calls and results are function_call items."""
    conversation = Conversation("0/0/1", "0")
    conversation.absorb(_call_reply("get_time", '{"city": "Lima"}'))
    instructions, items = response_input(conversation.request().messages)
    assert instructions == conversation.messages[0]["content"]
    assert [i.get("type", i.get("role")) for i in items] == [
        "user",
        "function_call",
        "function_call_output",
    ]
    assert items[1]["call_id"] == items[2]["call_id"] == "c1"


def test_each_virtual_user_has_its_own_session_id() -> None:
    """With sessions on, one Modal-Session-ID per user, the same on each of its turns."""
    workload = AgenticWorkload(seed=0, level=0, session_ids=True, run_id="r")
    for index, user in enumerate([0, 1, 0]):
        workload.bind(index, user, workload.start(user))
    ids = [workload.request(i).headers for i in range(3)]
    assert ids[0] == ids[2] == {SESSION_HEADER: "r-0-0"} != ids[1]
    assert AgenticWorkload(seed=0, level=0).start(0).request().headers is None


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_an_agentic_run_measures_every_turn(api: str) -> None:
    """Against a scripted server, per-turn rows grow, cached tokens give the hit share, broken
    calls are counted with their kinds, and every request carries its user's session."""
    client = ScriptedClient()
    client.report_cached = True
    client.tool_faults = {1: "leak", 5: "schema"}  # call 0 is the probe; 1 and 5 user turns
    result = await run(client, scenario="agentic", turns=4, requests=None, api=api)
    (level,) = result.levels
    assert len(level.records) == 2 * 4  # two users, one conversation of four turns each
    means = [t.prompt_tokens_mean or 0 for t in level.turns]
    assert means == sorted(means)
    assert len(set(means)) == 4
    assert level.cache is not None
    assert 0 < (level.cache.hit_share or 0) < 1
    calls = level.tool_calls
    assert calls is not None
    assert (calls.invalid, calls.problems) == (
        2,
        {"harmony_leak": 1, "schema": 1, "unknown_tool": 1},
    )
    assert calls.invalid_rate == 2 / calls.calls
    sessions = [c.headers.get(SESSION_HEADER) for c in client.calls[1:]]  # not the probe
    assert None not in sessions
    assert len(set(sessions)) == 2
    assert any("tool calls were invalid" in w for w in level.warnings)


async def test_chat_and_responses_report_the_same_timings() -> None:
    """``--api responses`` reports the same TTFT and e2e as chat for the same scripted timing,
    and a TPOT within the hidden header tokens' share of it."""
    chat = await run(ScriptedClient(), api="chat")
    responses = await run(ScriptedClient(), api="responses")
    a, b = chat.levels[0].summary.latency, responses.levels[0].summary.latency
    for metric in ("ttft", "ttft_content", "e2e"):
        chat_dist, responses_dist = a[metric], b[metric]
        assert chat_dist is not None
        assert responses_dist is not None
        assert responses_dist.p50 == pytest.approx(chat_dist.p50, abs=1e-3)
    chat_tpot, responses_tpot = a["tpot"], b["tpot"]
    assert chat_tpot is not None
    assert responses_tpot is not None
    assert responses_tpot.p50 == pytest.approx(chat_tpot.p50, rel=0.15)
    assert responses.levels[0].summary.completed == 6


def test_agentic_settings_refuse_what_does_not_apply() -> None:
    """No --rate or --prompts with agentic; turns at least 1; unknown names are refused."""
    with pytest.raises(ConfigError, match="--rate"):
        settings(scenario="agentic", levels=(Level(2, 1.0),))
    with pytest.raises(ConfigError, match="--turns"):
        settings(scenario="agentic", turns=0)
    with pytest.raises(ConfigError, match="--api"):
        settings(api="completions")
    assert settings(scenario="agentic", requests=None, turns=3).requests_for(Level(2)) == 6
    assert settings(scenario="agentic").sends_session_ids
    assert not settings().sends_session_ids


def test_a_call_open_when_its_stream_failed_carries_the_error_kind() -> None:
    """A call followed by an in-stream error (0.13.0's cut call) is invalid under the error's
    kind even when its arguments parse; the same call in a finished stream is valid."""
    request = Conversation("0/0/1", "0").request()
    cut = _call_reply("get_weather", '{"city": "Paris"}')
    cut.result.done = False
    failed = record_request(
        "c=1",
        0,
        cut.result,
        UpstreamError("list index", code=400),
        queue_s=0.0,
        failed_at=None,
        request=request,
    )
    fine = record_request(
        "c=1",
        1,
        _call_reply("get_weather", '{"city": "Paris"}').result,
        None,
        queue_s=0.0,
        failed_at=None,
        request=request,
    )
    assert [v.problems for v in failed.tool_calls] == [("upstream_400",)]
    assert (failed.lost_calls, failed.ok) == ([], False)
    assert [v.problems for v in fine.tool_calls] == [()]
