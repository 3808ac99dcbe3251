"""Oracle op for the mock's Responses bytes: each event validated with the running vLLM's
streaming union and re-serialised as that version's router writes it.

Runs only under a cached vLLM venv's interpreter (loaded by ``vllm_oracle.py``), either version.
``responses_validate`` takes ``{"events": [sse block], "body": json | null}``: each block
(``event: T\\ndata: J``) is validated with the class of its type (an ``event: error``
block with vLLM's ``ErrorResponse``), and a non-streamed body with ``ResponsesResponse``; each
answer is the class name and what ``model_dump_json()`` (0.13.0) or
``model_dump_json(by_alias=True)`` (0.33.0) writes, or the validation error.
"""

from __future__ import annotations

import typing
from typing import Any

from openai.types.responses import ResponseStreamEvent
from pydantic import ValidationError

try:  # 0.33.0: the Responses code has its own package
    from vllm.entrypoints.openai.responses import protocol as vp
    from vllm.entrypoints.serve.engine.protocol import ErrorResponse

    BY_ALIAS = True
except ImportError:  # 0.13.0
    from vllm.entrypoints.openai import protocol as vp
    from vllm.entrypoints.openai.protocol import ErrorResponse

    BY_ALIAS = False


def _members(union: Any) -> list[Any]:
    """The classes of a (possibly annotated) union."""
    while typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    return list(typing.get_args(union))


def _by_type() -> dict[str, Any]:
    """Each event type's class: vLLM's own where its union names one (its created, completed
    and reasoning_part events), else the openai package's (the deltas vLLM's union leaves to
    it; the classes vLLM's serving code constructs)."""
    classes: dict[str, Any] = {}
    for cls in _members(ResponseStreamEvent) + _members(vp.StreamingResponsesResponse):
        literal = cls.model_fields["type"].annotation
        for kind in typing.get_args(literal):
            classes[kind] = cls
    return classes


_EVENTS = _by_type()


def _dump(model: Any) -> str:
    return str(model.model_dump_json(by_alias=True) if BY_ALIAS else model.model_dump_json())


def _one(block: str) -> dict[str, Any]:
    head, _, data = block.partition("\n")
    kind = head.removeprefix("event: ")
    json_text = data.removeprefix("data: ")
    try:
        model = (
            ErrorResponse.model_validate_json(json_text)
            if kind == "error"
            else _EVENTS[kind].model_validate_json(json_text)
        )
    except ValidationError as exc:
        return {"ok": False, "type": kind, "error": str(exc)[:2000]}
    return {"ok": True, "type": kind, "cls": type(model).__name__, "json": _dump(model)}


def responses_validate(req: dict[str, Any]) -> dict[str, Any]:
    events = [_one(block) for block in req.get("events", [])]
    body = req.get("body")
    reply = None
    if body is not None:
        try:
            reply = {"ok": True, "json": _dump(vp.ResponsesResponse.model_validate_json(body))}
        except ValidationError as exc:
            reply = {"ok": False, "error": str(exc)[:2000]}
    return {"ok": True, "events": events, "body": reply}


OPS = {"responses_validate": responses_validate}
