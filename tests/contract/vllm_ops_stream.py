"""Oracle ops for the streaming client's contract tests: chunks built by vLLM 0.13.0's classes.

Runs only under the cached vLLM venv's interpreter (loaded by ``vllm_oracle.py``). The op
``stream_events`` turns a script of steps into the exact SSE events vLLM's
``chat_completion_stream_generator`` writes for them: the same protocol classes
(``ChatCompletionStreamResponse``, ``ChatCompletionResponseStreamChoice``, ``DeltaMessage``,
``DeltaToolCall``, ``UsageInfo``, ``ErrorResponse``), constructed with the same arguments, and
serialised the same way (``model_dump_json(exclude_unset=True)``; ``exclude_none`` too for the
final usage chunk; ``json.dumps`` of the error response's ``model_dump()``).

Steps: ``{"role": "assistant"}`` (the first chunk), ``{"reasoning": str}``, ``{"content": str}``,
``{"tool_start": {"index", "id", "name"}}``, ``{"tool_args": {"index", "arguments"}}``,
``{"finish": reason, ["content": str], ["stop_reason": x]}``, ``{"error": {"message", "type",
"code"}}`` (what vLLM sends when generation fails: the stream stops there, with no usage chunk).
A step may say how many tokens it holds (``"tokens"``, default 1) for the usage counts.
"""

from __future__ import annotations

import json
from typing import Any

from vllm.entrypoints.openai.protocol import (
    ChatCompletionResponseStreamChoice,
    ChatCompletionStreamResponse,
    DeltaFunctionCall,
    DeltaMessage,
    DeltaToolCall,
    ErrorInfo,
    ErrorResponse,
    UsageInfo,
)


def _delta(step: dict[str, Any]) -> DeltaMessage:
    if "reasoning" in step:
        return DeltaMessage(reasoning=step["reasoning"])
    if "content" in step:
        return DeltaMessage(content=step["content"])
    if "tool_start" in step:
        call = step["tool_start"]
        return DeltaMessage(
            tool_calls=[
                DeltaToolCall(
                    id=call["id"],
                    type="function",
                    function=DeltaFunctionCall(name=call["name"], arguments=""),
                    index=call["index"],
                )
            ]
        )
    if "tool_args" in step:
        call = step["tool_args"]
        return DeltaMessage(
            tool_calls=[
                DeltaToolCall(
                    index=call["index"], function=DeltaFunctionCall(arguments=call["arguments"])
                )
            ]
        )
    return DeltaMessage()  # a finishing chunk without text


def op_stream_events(req: dict[str, Any]) -> dict[str, Any]:
    """The SSE events (``data: ...\\n\\n`` strings) vLLM 0.13.0 writes for a script of steps."""
    model = req.get("model", "m")
    request_id = req.get("id", "chatcmpl-1")
    created = req.get("created", 1)
    prompt_tokens = req.get("prompt_tokens", 0)
    continuous = req.get("continuous_usage", False)
    include_usage = req.get("include_usage", True)
    completion_tokens = 0
    events: list[str] = []
    for step in req["steps"]:
        if "error" in step:
            error = step["error"]
            info = ErrorInfo(message=error["message"], type=error["type"], code=error["code"])
            events.append(f"data: {json.dumps(ErrorResponse(error=info).model_dump())}\n\n")
            events.append("data: [DONE]\n\n")
            return {"ok": True, "events": events}
        if "role" in step:
            choice = ChatCompletionResponseStreamChoice(
                index=0,
                delta=DeltaMessage(role=step["role"], content=""),
                logprobs=None,
                finish_reason=None,
            )
            chunk = ChatCompletionStreamResponse(
                id=request_id,
                object="chat.completion.chunk",
                created=created,
                choices=[choice],
                model=model,
                prompt_token_ids=None,
            )
        else:
            completion_tokens += step.get("tokens", 1)
            if "finish" in step:
                choice = ChatCompletionResponseStreamChoice(
                    index=0,
                    delta=_delta(step),
                    logprobs=None,
                    finish_reason=step["finish"],
                    stop_reason=step.get("stop_reason"),
                    token_ids=None,
                )
            else:
                choice = ChatCompletionResponseStreamChoice(
                    index=0, delta=_delta(step), logprobs=None, finish_reason=None, token_ids=None
                )
            chunk = ChatCompletionStreamResponse(
                id=request_id,
                object="chat.completion.chunk",
                created=created,
                choices=[choice],
                model=model,
            )
        if continuous:
            chunk.usage = UsageInfo(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            )
        events.append(f"data: {chunk.model_dump_json(exclude_unset=True)}\n\n")
    if include_usage:
        final = ChatCompletionStreamResponse(
            id=request_id,
            object="chat.completion.chunk",
            created=created,
            choices=[],
            model=model,
            usage=UsageInfo(
                prompt_tokens=prompt_tokens,
                completion_tokens=completion_tokens,
                total_tokens=prompt_tokens + completion_tokens,
            ),
        )
        events.append(f"data: {final.model_dump_json(exclude_unset=True, exclude_none=True)}\n\n")
    events.append("data: [DONE]\n\n")
    return {"ok": True, "events": events}


OPS = {"stream_events": op_stream_events}
