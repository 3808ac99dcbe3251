"""Tool-call faults at known rates: the schedule's exact counts, the config's checks, and each
fault as a client of the mock receives it, streamed and not, in both versions."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.options import VLLM_VERSIONS
from gptoss_modal.testing._tool_faults import TOOL_FAULT_FIELDS, ToolFaultSchedule
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
PROMPT = "What is the weather in Paris? Use the tool."
MARKUP = ("<|channel|>", "<|constrain|>", "to=functions.")


@given(st.integers(min_value=0, max_value=1000), st.integers(min_value=1, max_value=400))
def test_one_rate_faults_exactly_floor_n_times_rate(per_mille: int, calls: int) -> None:
    """With one rate, exactly floor(N * rate) of the first N tool calls are faulted (a partner
    check: every call after the N-th keeps the count at the next floor)."""
    rate = per_mille / 1000
    schedule = ToolFaultSchedule({"tool_args_short_rate": rate})
    hits = sum(schedule.next_call() is not None for _ in range(calls))
    assert hits == calls * per_mille // 1000  # exact: 0.29 over 100 calls is 29, not 28
    assert schedule.applied == Counter({"args-short": hits} if hits else {})
    more = sum(schedule.next_call() is not None for _ in range(calls))
    assert hits + more == 2 * calls * per_mille // 1000


def test_several_rates_keep_each_count_and_never_double_up() -> None:
    """With all five rates (sum 1), each kind's count after N calls is floor(N * rate) less at
    most the number of kinds (one fault per call: a kind due with another waits a call)."""
    rates = dict(zip(TOOL_FAULT_FIELDS, (0.1, 0.2, 0.3, 0.15, 0.25), strict=True))
    schedule = ToolFaultSchedule(rates)
    seen = [schedule.next_call() for _ in range(1000)]
    counts = Counter(seen)
    assert counts.pop(None, 0) <= len(rates)
    for name, kind in TOOL_FAULT_FIELDS.items():
        quota = round(1000 * rates[name])
        assert quota - len(rates) <= counts[kind] <= quota
    assert counts == schedule.applied


def test_no_rates_fault_nothing() -> None:
    """All rates zero: no call is faulted."""
    schedule = ToolFaultSchedule(dict.fromkeys(TOOL_FAULT_FIELDS, 0.0))
    assert [schedule.next_call() for _ in range(50)] == [None] * 50


@pytest.mark.parametrize("name", sorted(TOOL_FAULT_FIELDS))
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_a_rate_outside_zero_one_is_a_config_error_naming_it(name: str, value: float) -> None:
    """A rate outside [0, 1] is refused, naming the field and what is allowed."""
    with pytest.raises(ConfigError, match=rf"{name}.*within \[0, 1\]"):
        MockConfig(**{name: value})  # type: ignore[arg-type]  # a rate field, by name


def test_rates_summing_past_one_are_refused() -> None:
    """Two rates summing past 1 are refused, naming both fields."""
    with pytest.raises(ConfigError, match=r"tool_name_leak_rate.*harmony_error_rate.*at most 1"):
        MockConfig(tool_name_leak_rate=0.6, harmony_error_rate=0.5)


async def chat(server: MockVLLM, stream: bool, **extra: Any) -> tuple[int, bytes]:
    """One agent-turn request: its status and body."""
    body = {
        "model": "llm",
        "messages": [{"role": "user", "content": PROMPT}],
        "tools": [WEATHER],
        "tool_choice": "auto",
        "stream": stream,
        "reasoning_effort": "low",
        **extra,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(server.url + "/v1/chat/completions", json=body) as response,
    ):
        return response.status, await response.read()


def classify(status: int, body: bytes, stream: bool) -> str | None:
    """Which fault a client sees in one reply, as a validity checker would count it."""
    if status != 200 or b"unexpected tokens remaining" in body:
        return "harmony-error"
    if stream:
        datas = [e[6:] for e in body.split(b"\n\n") if e.startswith(b"data: {")]
        chunks = [json.loads(d) for d in datas]
        if any("error" in c for c in chunks):
            return "args-length"  # 0.13.0's list-index error after a cut call
        choices = [c["choices"][0] for c in chunks if c.get("choices")]
        calls = [t for c in choices for t in c["delta"].get("tool_calls") or []]
        content = "".join(c["delta"].get("content") or "" for c in choices)
        finish = choices[-1]["finish_reason"]
        names = [t["function"]["name"] for t in calls if "name" in t["function"]]
        args = "".join(t["function"].get("arguments", "") for t in calls)
    else:
        choice = json.loads(body)["choices"][0]
        tool_calls = choice["message"].get("tool_calls") or []
        names = [t["function"]["name"] for t in tool_calls]
        args = "".join(t["function"]["arguments"] for t in tool_calls)
        content, finish = choice["message"]["content"] or "", choice["finish_reason"]
    if any(m in n for n in names for m in MARKUP):
        return "name-leak"
    if any(m in content for m in MARKUP):
        return "content-leak"
    if finish == "length":
        return "args-length"
    try:
        json.loads(args)
    except json.JSONDecodeError:
        return "args-short"
    return None


@pytest.mark.parametrize("version", VLLM_VERSIONS)
@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("name", sorted(TOOL_FAULT_FIELDS))
async def test_a_fault_rate_gives_its_exact_count_as_clients_see_it(
    version: str, stream: bool, name: str
) -> None:
    """Over 20 agent turns at rate 0.25, a client sees exactly 5 of that fault and 15 sound
    calls; the server's accessor says the same."""
    config = MockConfig(vllm_version=version, content_tokens=8, **{name: 0.25})  # type: ignore[arg-type]
    async with MockVLLM(config) as server:
        seen = Counter([classify(*await chat(server, stream), stream) for _ in range(20)])
        kind = TOOL_FAULT_FIELDS[name]
        assert seen == Counter({kind: 5, None: 15})
        assert server.tool_faults_applied == {kind: 5}
        assert server.tool_calls_planned == 20


async def test_answer_turns_do_not_count_toward_the_rate() -> None:
    """Turns answering a tool result are not tool calls: they are never faulted or counted."""
    answer = [
        {"role": "user", "content": PROMPT},
        {"role": "tool", "tool_call_id": "c", "content": "Sunny"},
    ]
    async with MockVLLM(MockConfig(tool_name_leak_rate=1.0)) as server:
        for _ in range(3):
            status, body = await chat(server, False, messages=answer)
            assert status == 200
            assert json.loads(body)["choices"][0]["finish_reason"] == "stop"
        assert server.tool_calls_planned == 0
        assert server.tool_faults_applied == {}
