"""The mock's agent loop: which turn calls which tool, with schema-valid arguments, and how a
turn after a tool result answers (issue #14)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal.testing import _agent as agent
from gptoss_modal.testing import _engine as engine

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
            "required": ["city", "unit"],
        },
    },
}
SEARCH = {
    "type": "function",
    "function": {"name": "web_search", "parameters": {"type": "object", "properties": {}}},
}
TOOLS = [WEATHER, SEARCH]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def plan(messages: list[dict[str, Any]], tool_choice: Any = "auto", **kw: Any) -> engine.Generation:
    return engine.plan_generation(
        messages=messages,
        seed=7,
        reasoning_effort="low",
        content_tokens=30,
        max_tokens=4000,
        ignore_eos=False,
        tools=TOOLS,
        tool_choice=tool_choice,
        **kw,
    )


def test_the_issues_example_gets_a_tool_call_under_auto() -> None:
    """ "What is the weather in Paris? Use the tool." with get_weather under auto calls it, with
    Paris as the city."""
    gen = plan([user("What is the weather in Paris? Use the tool.")])
    assert gen.tool_name == "get_weather"
    assert json.loads(gen.tool_arguments or "") == {"city": "Paris", "unit": "c"}
    assert gen.stop_reason == engine.CALL


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("Please web_search for cats", "web_search"),
        ("Do a web search for cats", "web_search"),
        ("Tell me a joke", "get_weather"),  # nothing named: the first tool
    ],
)
def test_a_user_turn_calls_the_named_tool_else_the_first(prompt: str, expected: str) -> None:
    """Under auto (and with tool_choice absent), a user turn calls the tool it names (name or
    name with spaces), else the first tool."""
    assert plan([user(prompt)]).tool_name == expected
    assert plan([user(prompt)], tool_choice=None).tool_name == expected


def test_a_turn_after_a_tool_result_answers_quoting_it() -> None:
    """A turn whose last message is a tool result gets a final answer (no call) whose text
    starts by quoting the result, the same for the same seed."""
    turn = [
        user("What is the weather in Paris? Use the tool."),
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny, 21 C"},
    ]
    gen = plan(turn)
    assert gen.tool_name is None
    assert gen.content.startswith("The tool returned Sunny, 21 C.")
    assert gen.stop_reason is None
    assert gen.finish_reason == "stop"
    assert plan(turn).tokens == gen.tokens


def test_none_never_calls_and_required_calls_even_after_a_result() -> None:
    """``none`` gives no call on a user turn; ``required`` calls even after a tool result."""
    assert plan([user("use get_weather")], tool_choice="none").tool_name is None
    after = [user("x"), {"role": "tool", "content": "done"}]
    assert plan(after, tool_choice="required").tool_name == "get_weather"


def valid(value: Any, schema: dict[str, Any]) -> bool:
    """Whether ``value`` satisfies ``schema``, by ``jsonschema`` under the schema's own draft."""
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # the generated schemas themselves must be valid JSON Schema
    return bool(cls(schema).is_valid(value))


SCHEMA = st.recursive(
    st.sampled_from(
        [
            {"type": "string"},
            {"type": "integer"},
            {"type": "number"},
            {"type": "boolean"},
            {"enum": ["a", "b"]},
            {"type": "integer", "minimum": 5},
            {"type": ["null", "number"]},
        ]
    ),
    lambda inner: st.one_of(
        st.builds(lambda items: {"type": "array", "items": items, "minItems": 1}, inner),
        st.dictionaries(st.sampled_from("pqrs"), inner, max_size=3).map(
            lambda props: {"type": "object", "properties": props, "required": sorted(props)}
        ),
    ),
    max_leaves=6,
)


@given(st.dictionaries(st.sampled_from("abcdef"), SCHEMA, min_size=1, max_size=4))
def test_arguments_satisfy_the_tools_schema(properties: dict[str, Any]) -> None:
    """Arguments for any schema of the supported types validate against it, every required
    property present (a partner check: an empty object fails the same check)."""
    params = {"type": "object", "properties": properties, "required": sorted(properties)}
    tool = {"type": "function", "function": {"name": "f", "parameters": params}}
    arguments = json.loads(agent.tool_arguments(tool, "Weather in Rome"))
    assert valid(arguments, params)
    assert not valid({}, params)


def test_arguments_follow_numbers_enums_arrays_and_objects() -> None:
    """Each JSON type gets a value of its own type; strings take the prompt's capitalised word."""
    params = {
        "type": "object",
        "properties": {
            "n": {"type": "number"},
            "i": {"type": "integer", "minimum": 3},
            "b": {"type": "boolean"},
            "e": {"type": "string", "enum": ["x", "y"]},
            "a": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "o": {"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]},
            "s": {"type": "string"},
        },
        "required": ["n", "i", "b", "e", "a", "o", "s"],
    }
    tool = {"type": "function", "function": {"name": "f", "parameters": params}}
    args = json.loads(agent.tool_arguments(tool, "Book a table in Lyon"))
    assert args == {
        "n": 1,
        "i": 3,
        "b": True,
        "e": "x",
        "a": ["Lyon", "Lyon"],
        "o": {"k": 1},
        "s": "Lyon",
    }
