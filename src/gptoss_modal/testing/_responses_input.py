"""A Responses request's ``input``, ``instructions``, ``tools`` and ``tool_choice`` as the
chat-style messages and tools the mock's planner reads, so the engine's choices (a tool call
for a user turn, an answer after a tool result) apply to both APIs alike.

Pure. A shape the mock cannot read is a :class:`~gptoss_modal.testing._validation.Rejection`
(vLLM's 400 body) naming the field (``input[2].type``) and what is allowed; nothing in the
input is silently dropped except what carries no text for the engine (reasoning summaries).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing._validation import Rejection

__all__ = ["BUILTIN_TOOLS", "chat_messages", "chat_tool_choice", "chat_tools"]

ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")
# The built-in tools a tool server runs (not functions: they never reach the planner).
BUILTIN_TOOLS = ("web_search_preview", "code_interpreter", "mcp", "container")


def _refuse(field: str, value: object, allowed: str) -> Rejection:
    message = f"mock: {field}={value!r} is not supported; allowed: {allowed}"
    return Rejection(400, wire.error_body(message, "BadRequestError", 400))


def _text(content: Any, where: str) -> str:
    """A message's content: a string, or its parts' texts joined (input_text, output_text)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _refuse(f"{where}.content", type(content).__name__, "a string or a list of parts")
    texts = []
    for number, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("text", ""), str):
            raise _refuse(f"{where}.content[{number}]", part, "a part with a text")
        texts.append(part.get("text", ""))
    return "".join(texts)


def _item(item: Any, where: str) -> dict[str, Any]:
    """One input item as one chat message."""
    if not isinstance(item, dict):
        raise _refuse(where, type(item).__name__, "an object")
    kind = item.get("type", "message")  # an easy input message has only role and content
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise _refuse(f"{where}.role", role, "user, assistant, system or developer")
        return {"role": role, "content": _text(item.get("content", ""), where)}
    if kind == "function_call":
        call = {"name": item.get("name"), "arguments": item.get("arguments", "")}
        tool_call = {"id": item.get("call_id"), "type": "function", "function": call}
        return {"role": "assistant", "content": None, "tool_calls": [tool_call]}
    if kind == "function_call_output":
        output = item.get("output", "")
        text = output if isinstance(output, str) else _text(output, where)
        return {"role": "tool", "tool_call_id": item.get("call_id"), "content": text}
    if kind == "reasoning":
        parts = item.get("content") or []
        return {"role": "assistant", "content": "", "reasoning": _text(parts, where)}
    raise _refuse(f"{where}.type", kind, ", ".join(ITEM_TYPES))


def chat_messages(
    input_: Any, instructions: Any = None, history: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The chat messages of a request: its instructions (a system message), the history of
    ``previous_response_id`` (already chat messages), then the input."""
    messages: list[dict[str, Any]] = []
    if instructions is not None:
        if not isinstance(instructions, str):
            raise _refuse("instructions", type(instructions).__name__, "a string")
        messages.append({"role": "system", "content": instructions})
    messages.extend(history)
    if isinstance(input_, str):
        messages.append({"role": "user", "content": input_})
    elif isinstance(input_, list):
        messages.extend(_item(item, f"input[{n}]") for n, item in enumerate(input_))
    else:
        raise _refuse("input", type(input_).__name__, "a string or a list of items")
    return messages


def chat_tools(tools: Any) -> list[dict[str, Any]]:
    """The request's function tools in chat shape (``{"type":"function","function":{...}}``);
    built-in tools are the tool server's, not the planner's."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise _refuse("tools", type(tools).__name__, "a list of tools")
    out = []
    for number, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind in BUILTIN_TOOLS:
            continue
        if kind != "function" or not isinstance(tool.get("name"), str):
            allowed = "function (with a name), " + ", ".join(BUILTIN_TOOLS)
            raise _refuse(f"tools[{number}].type", kind, allowed)
        function = {k: tool[k] for k in ("name", "description", "parameters") if k in tool}
        out.append({"type": "function", "function": function})
    return out


def chat_tool_choice(choice: Any) -> Any:
    """``tool_choice`` in chat shape: a string as it is; ``{"type":"function","name":N}`` as
    ``{"type":"function","function":{"name":N}}``."""
    if isinstance(choice, dict) and choice.get("type") == "function":
        return {"type": "function", "function": {"name": choice.get("name")}}
    return choice
