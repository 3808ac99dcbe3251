"""The JSON vLLM writes for the Responses API, per version, built without pydantic: the
response object, its output items and usage, each streamed event, and the errors.

Pure. Each dict below has the keys, in the order and with the defaults, that the class vLLM's
serving code builds serialises to (the openai package's ``openai.types.responses`` models and
vLLM's own ``ResponsesResponse``, ``ResponseUsage`` and 0.13.0's ``response.reasoning_part.*``
events): ``model_dump_json()`` on 0.13.0, ``by_alias=True`` on 0.33.0 (so a function item's
``async_`` is ``async`` there). The contract tests validate every event with that version's
classes and re-serialise it to the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gptoss_modal.testing import _wire as wire

__all__ = [
    "Echo",
    "Usage",
    "error_body",
    "event_bytes",
    "function_item",
    "message_item",
    "not_found",
    "output_text",
    "reasoning_item",
    "response_object",
    "streaming_error",
]


def _alias(version: str) -> str:
    """The key of the openai models' ``async_`` field as that version serialises it."""
    return "async_" if version == "0.13.0" else "async"


@dataclass(frozen=True)
class Echo:
    """What the response object repeats of its request (``ResponsesResponse.from_request``)."""

    response_id: str
    model: str
    max_output_tokens: int
    instructions: str | None = None
    metadata: Any = None
    parallel_tool_calls: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    tool_choice: Any = "auto"
    tools: Sequence[dict[str, Any]] = ()
    background: bool = False
    max_tool_calls: int | None = None
    previous_response_id: str | None = None
    reasoning: Any = None
    service_tier: str = "auto"
    text: Any = None
    truncation: str = "disabled"
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # 0.33.0's penalties, when sent


def _tool(tool: dict[str, Any], version: str) -> dict[str, Any]:
    """A request's tool as the response object echoes it (a function tool gets every field of
    the openai package's ``FunctionTool``, unset ones null; other tools as they were sent)."""
    if tool.get("type") == "web_search_preview":  # the openai model's fields, unset null
        return {
            "type": "web_search_preview",
            **{k: tool.get(k) for k in ("search_content_types", "search_context_size")},
            "user_location": tool.get("user_location"),
        }
    if tool.get("type") == "code_interpreter":
        container = tool.get("container")
        if isinstance(container, dict):
            keys = ("file_ids", "memory_limit", "network_policy")
            container = {"type": container.get("type"), **{k: container.get(k) for k in keys}}
        return {"container": container, "type": "code_interpreter", "allowed_callers": None}
    if tool.get("type") != "function":
        return dict(tool)
    return {
        "name": tool.get("name"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
        "type": "function",
        "allowed_callers": tool.get("allowed_callers"),
        _alias(version): tool.get("async", tool.get("async_")),
        "defer_loading": tool.get("defer_loading"),
        "description": tool.get("description"),
        "output_schema": tool.get("output_schema"),
    }


def _reasoning(reasoning: Any) -> Any:
    """``Reasoning`` as the openai package serialises it (its fields in declared order)."""
    if not isinstance(reasoning, dict):
        return None
    return {
        "context": reasoning.get("context"),
        "effort": reasoning.get("effort"),
        "generate_summary": reasoning.get("generate_summary"),
        "mode": reasoning.get("mode"),
        "summary": reasoning.get("summary"),
    }


@dataclass(frozen=True)
class Usage:
    """One turn's token counts (the mock runs no built-in tool turns)."""

    input_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cached_tokens: int = 0  # prefix-cache hit (both versions report it without any flag)
    cache_write_tokens: int = 0  # 0.33.0: tokens this prompt wrote to the prefix cache

    def to_json(self, version: str) -> dict[str, Any]:
        """vLLM's ``ResponseUsage`` with its per-turn lists (0.33.0 adds cache_write_tokens)."""
        details: dict[str, Any] = {"cached_tokens": self.cached_tokens}
        if version != "0.13.0":
            details["cache_write_tokens"] = self.cache_write_tokens
        details["input_tokens_per_turn"] = [self.input_tokens]
        details["cached_tokens_per_turn"] = [self.cached_tokens]
        return {
            "input_tokens": self.input_tokens,
            "input_tokens_details": details,
            "output_tokens": self.output_tokens,
            "output_tokens_details": {
                "reasoning_tokens": self.reasoning_tokens,
                "tool_output_tokens": 0,
                "output_tokens_per_turn": [self.output_tokens],
                "tool_output_tokens_per_turn": [0],
            },
            "total_tokens": self.input_tokens + self.output_tokens,
        }


def _tool_choice(echo: Echo, version: str) -> Any:
    """0.33.0's request validator (``check_tool_usage``) turns ``auto`` into ``none`` when the
    request has no tools; 0.13.0 echoes what was sent."""
    if version != "0.13.0" and not echo.tools and echo.tool_choice == "auto":
        return "none"
    return echo.tool_choice


def response_object(
    echo: Echo,
    version: str,
    *,
    created: int,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None,
) -> dict[str, Any]:
    """vLLM's ``ResponsesResponse`` (``incomplete_details`` is max_output_tokens' when the
    status is incomplete, as ``from_request`` sets it)."""
    incomplete = {"reason": "max_output_tokens"} if status == "incomplete" else None
    body: dict[str, Any] = {
        "id": echo.response_id,
        "created_at": created,
        "incomplete_details": incomplete,
        "instructions": echo.instructions,
        "metadata": echo.metadata,
        "model": echo.model,
        "object": "response",
        "output": output,
        "parallel_tool_calls": echo.parallel_tool_calls,
        "temperature": echo.temperature,
        "tool_choice": _tool_choice(echo, version),
        "tools": [_tool(t, version) for t in echo.tools],
        "top_p": echo.top_p,
        "background": echo.background,
        "max_output_tokens": echo.max_output_tokens,
        "max_tool_calls": echo.max_tool_calls,
        "previous_response_id": echo.previous_response_id,
        "prompt": None,
    }
    if version != "0.13.0":
        body.update(prompt_cache_options=None, prompt_cache_key=None, prompt_cache_retention=None)
    body["reasoning"] = _reasoning(echo.reasoning)
    if version != "0.13.0":
        body["safety_identifier"] = None
    body.update(
        service_tier=echo.service_tier,
        status=status,
        text=echo.text,
        top_logprobs=None,
        truncation=echo.truncation,
        usage=None if usage is None else usage.to_json(version),
        user=echo.user,
    )
    if version != "0.13.0":
        body.update(
            presence_penalty=echo.extra.get("presence_penalty", 0.0),
            frequency_penalty=echo.extra.get("frequency_penalty", 0.0),
            kv_transfer_params=None,
            ec_transfer_params=None,
        )
    body.update(input_messages=None, output_messages=None)
    return body


# --- output items ------------------------------------------------------------------------------


def output_text(text: str, *, logprobs: list[Any] | None) -> dict[str, Any]:
    """``ResponseOutputText`` (vLLM sends ``logprobs=[]`` while streaming, null when done)."""
    return {"annotations": [], "text": text, "type": "output_text", "logprobs": logprobs}


def message_item(item_id: str, content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    """``ResponseOutputMessage``."""
    return {
        "id": item_id,
        "content": content,
        "role": "assistant",
        "status": status,
        "type": "message",
        "phase": None,
    }


def reasoning_item(item_id: str, text: str | None, status: str | None) -> dict[str, Any]:
    """``ResponseReasoningItem`` (``text`` None: the item added before its content)."""
    content = None if text is None else [{"text": text, "type": "reasoning_text"}]
    return {
        "id": item_id,
        "summary": [],
        "type": "reasoning",
        "content": content,
        "encrypted_content": None,
        "status": status,
    }


def function_item(
    version: str,
    *,
    item_id: str | None,
    call_id: str,
    name: str,
    arguments: str,
    status: str | None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``ResponseFunctionToolCall``; ``extra`` are the undeclared keywords vLLM passes (the
    openai models keep them, after the declared fields)."""
    item = {
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
        "type": "function_call",
        "id": item_id,
        _alias(version): None,
        "caller": None,
        "namespace": None,
        "status": status,
    }
    item.update(extra or {})
    return item


# --- events and errors -------------------------------------------------------------------------


def event_bytes(event: dict[str, Any]) -> bytes:
    """One SSE event as vLLM's router writes it: ``event: <type>`` then ``data: <json>``."""
    kind: str = event["type"]
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def error_body(message: str, err_type: str, code: int, param: str | None) -> bytes:
    """vLLM's ``ErrorResponse`` as its JSONResponse writes it."""
    error = {"message": message, "type": err_type, "param": param, "code": code}
    return orjson.dumps({"error": error})


def not_found(response_id: str, version: str) -> bytes:
    """``_make_not_found_error``: 404 (0.33.0 names ``response_id`` as the param)."""
    param = None if version == "0.13.0" else "response_id"
    message = f"Response with id '{response_id}' not found."
    return error_body(message, "invalid_request_error", 404, param)


def streaming_error(message: str, err_type: str, code: int, version: str) -> bytes:
    """vLLM's error payload as an SSE event (``create_streaming_error_response``'s JSON:
    ``json.dumps`` on 0.13.0, compact on 0.33.0) under ``event: error``."""
    error = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    data: bytes = json.dumps(error).encode() if version == "0.13.0" else orjson.dumps(error)
    return b"event: error\ndata: " + data + b"\n\n"


def new_id(prefix: str) -> str:
    """An item id as vLLM makes it (``f"{prefix}_{random_uuid()}"``)."""
    return f"{prefix}_{wire.random_id()}"
