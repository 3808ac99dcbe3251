"""How the mock drives an agent loop: which tool a turn calls, with which arguments, and what
a turn answering a tool result says.

Pure and deterministic: no I/O, no clock. API-neutral: chat completions and the Responses
endpoint (which turns ``function_call_output`` items into ``role: "tool"`` messages) both reach
these rules through the planner.

The rules, as a newcomer trying an agent loop expects them:

- ``tool_choice`` ``"none"``: no call. A named function: that function. ``"required"``: the
  tool the prompt names, else the first tool.
- ``"auto"`` (or absent, which vLLM turns into ``"auto"`` when tools are given): a turn whose
  last message is a tool result (``role: "tool"``) gets a final answer; any other turn calls the
  tool the last message names (its name, or the name with spaces for underscores), else the
  first tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

__all__ = [
    "answer_opening",
    "choose_tool",
    "last_role",
    "tool_arguments",
]

MAX_SCHEMA_DEPTH = 8  # nested objects/arrays followed when making arguments (deeper: {} / [])
RESULT_WORDS = 12  # words of a tool result the final answer quotes


def last_role(messages: Sequence[dict[str, Any]]) -> str | None:
    """The role of the conversation's last message (None for an empty conversation)."""
    if not messages:
        return None
    role = messages[-1].get("role")
    return role if isinstance(role, str) else None


def _name(tool: dict[str, Any]) -> str:
    return str((tool.get("function") or {}).get("name") or "")


def _named_in(tools: Sequence[dict[str, Any]], prompt: str) -> dict[str, Any] | None:
    lowered = prompt.lower()
    for tool in tools:
        name = _name(tool).lower()
        if name and (name in lowered or name.replace("_", " ") in lowered):
            return tool
    return None


def choose_tool(
    tools: Sequence[dict[str, Any]],
    tool_choice: Any,
    prompt: str,
    role: str | None = "user",
) -> dict[str, Any] | None:
    """The tool a turn calls, by the rules in this module's docstring (``role``: the role of
    the conversation's last message; ``prompt``: its text)."""
    if not tools or tool_choice == "none":
        return None
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name") or tool_choice.get("name")
        return next((t for t in tools if _name(t) == wanted), None)
    if tool_choice != "required" and role == "tool":
        return None  # the loop's next step: answer from the tool's result
    return _named_in(tools, prompt) or tools[0]


def answer_opening(messages: Sequence[dict[str, Any]], result_text: str) -> str:
    """The first sentence of a final answer after a tool result: it quotes the result, so a
    test (or a user) sees the answer refers to it."""
    if last_role(messages) != "tool":
        return ""
    words = " ".join(result_text.split()[:RESULT_WORDS])
    return f"The tool returned {words}." if words else "The tool returned nothing."


def _capitalised_word(prompt: str) -> str:
    # a capitalised word that does not start a sentence: a place or a name, most likely
    capitalised = re.findall(r"(?<![.!?]\s)(?<=\s)[A-Z][a-z]+\b", prompt)
    return capitalised[-1] if capitalised else "example"


def _value(schema: Any, word: str, depth: int) -> Any:  # noqa: C901  (one branch per JSON type)
    """A value satisfying ``schema`` (enum, const, number/integer/boolean/array/object/string,
    or the first of a union's types)."""
    if not isinstance(schema, dict):
        return word
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for union in ("anyOf", "oneOf"):
        if schema.get(union):
            return _value(schema[union][0], word, depth)
    kind = schema.get("type", "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind in ("integer", "number"):
        return max(1, int(schema.get("minimum", 1)))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        items = schema.get("items")
        count = int(schema.get("minItems", 1 if items else 0))
        if depth >= MAX_SCHEMA_DEPTH:
            return []
        return [_value(items, word, depth + 1) for _ in range(count)]
    if kind == "object":
        return _object(schema, word, depth + 1) if depth < MAX_SCHEMA_DEPTH else {}
    return word


def _object(schema: dict[str, Any], word: str, depth: int) -> dict[str, Any]:
    props = schema.get("properties") or {}
    names = list(schema.get("required") or props)
    return {name: _value(props.get(name) or {}, word, depth) for name in names}


def tool_arguments(tool: dict[str, Any], prompt: str) -> str:
    """Compact JSON arguments satisfying the tool's parameter schema: its required properties
    (all of them when none is required), strings from the prompt's last capitalised word."""
    params = (tool.get("function") or {}).get("parameters") or {}
    args = _object(params, _capitalised_word(prompt), 0) if isinstance(params, dict) else {}
    return json.dumps(args, separators=(",", ":"), ensure_ascii=False)
