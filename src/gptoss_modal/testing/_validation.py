"""The requests vLLM refuses before generating, with the exact reply each version gives.

Pure: each check reads the request (or a number the planner derived) and raises
:class:`Rejection` carrying the status and body bytes vLLM sends; the contract tests compare
those bytes with each version's own FastAPI app. 0.33.0 lists validation errors without
FastAPI's endpoint location, summarises their inputs, and names the ``param``; its request
model takes seven reasoning efforts, of which harmony renders three.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gptoss_modal.stream.request import (  # the one list of efforts per version
    HARMONY_EFFORTS,
    REASONING_EFFORTS,
    reasoning_efforts,
)
from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing import _wire_v033 as wire033

__all__ = [
    "REASONING_EFFORTS",
    "Rejection",
    "check_chat_body",
    "check_content_type",
    "check_harmony_effort",
    "check_model",
    "check_n",
    "context_too_long",
    "engine_dead",
    "parse_json_body",
]


class Rejection(Exception):  # a reply to send, not a failure of the mock
    """A request vLLM would refuse before generating; carries the reply's status and bytes."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _error(loc: tuple[Any, ...], kind: str, msg: str, value: Any, **ctx: Any) -> dict[str, Any]:
    """One pydantic validation error, as FastAPI lists it."""
    err: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        err["ctx"] = ctx
    return err


def _summary(value: Any) -> Any:
    """0.33.0's size-bounded stand-in for an error's input (``_summarize_error_input``)."""
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "...[truncated]"
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return f"<{type(value).__name__} of {len(value)} items>"
    text = str(value)
    return text if len(text) <= 200 else text[:200] + "...[truncated]"


def _validation_error_033(errors: list[Any]) -> bytes:
    """0.33.0's ``validation_exception_handler``: the errors with dotted locations and
    summarised inputs, the first location as ``param``, no endpoint source location."""
    lines = []
    for err in errors:
        shown = dict(err) if isinstance(err, dict) else err
        if isinstance(shown, dict):
            shown["loc"] = ".".join(str(part) for part in shown["loc"])
            shown["input"] = _summary(shown["input"])
        lines.append(f"  {shown}\n")
    n = len(errors)
    message = (f"{n} validation error{'s' if n != 1 else ''}:\n" + "".join(lines)).rstrip()
    first = errors[0] if errors else None
    param = ".".join(map(str, first["loc"])) if isinstance(first, dict) else None
    return wire033.error_body_param(message, "Bad Request", 400, param)


def _refuse(errors: list[Any], endpoint_context: str | None, vllm_version: str) -> Rejection:
    if vllm_version == "0.13.0":
        return Rejection(400, wire.validation_error(errors, endpoint_context=endpoint_context))
    return Rejection(400, _validation_error_033(errors))


def _bad_request_033(message: str, param: str) -> Rejection:
    """A ``VLLMValidationError``: the field named, and in the message too."""
    text = f"{message} (parameter={param})"
    return Rejection(400, wire033.error_body_param(text, "BadRequestError", 400, param))


def check_content_type(content_type: str, vllm_version: str = "0.13.0") -> None:
    """vLLM reads JSON bodies only (checked before the body is read)."""
    if content_type.lower().split(";", 1)[0] != "application/json":
        msg = "Unsupported Media Type: Only 'application/json' is allowed"
        raise _refuse([msg], None, vllm_version)


def parse_json_body(
    raw: bytes, endpoint_context: str, vllm_version: str = "0.13.0"
) -> dict[str, Any]:
    """The JSON object of a POST body, refused as FastAPI refuses bad JSON or a non-object;
    ``endpoint_context`` is the location FastAPI prints for the endpoint (0.13.0)."""
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        err = _error(("body", exc.pos), "json_invalid", "JSON decode error", {}, error=exc.msg)
        raise _refuse([err], endpoint_context, vllm_version) from exc
    if not isinstance(body, dict):
        err = _error(
            ("body",),
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
            body,
        )
        raise _refuse([err], endpoint_context, vllm_version)
    return body


def _quoted(values: Sequence[str]) -> str:
    """pydantic's list of a Literal's values: ``'a', 'b' or 'c'``."""
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f" or {quoted[-1]}" if len(quoted) > 1 else quoted[0]


def check_chat_body(
    body: dict[str, Any], endpoint_context: str, vllm_version: str = "0.13.0"
) -> None:
    """What ``ChatCompletionRequest``'s validation refuses: no ``messages``, an unknown
    ``reasoning_effort``, ``stream_options`` without ``stream``."""
    err = None
    effort = body.get("reasoning_effort")
    efforts = reasoning_efforts(vllm_version)
    if "messages" not in body:
        err = _error(("body", "messages"), "missing", "Field required", body)
    elif effort is not None and effort not in efforts:
        expected = _quoted(efforts)
        msg = f"Input should be {expected}"
        err = _error(("body", "reasoning_effort"), "literal_error", msg, effort, expected=expected)
    elif body.get("stream_options") and not body.get("stream"):  # an empty object is allowed
        text = "Stream options can only be defined when `stream=True`."
        if vllm_version != "0.13.0":
            raise _bad_request_033(text, "stream_options")
        err = _error(("body",), "value_error", f"Value error, {text}", body, error=ValueError(text))
    if err is not None:
        raise _refuse([err], endpoint_context, vllm_version)


def check_harmony_effort(effort: object, vllm_version: str) -> None:
    """0.33.0 renders only harmony's three efforts; the other four its request model accepts
    are refused while rendering (after the model and engine checks), as 0.33.0 does without
    ``--reasoning-effort-map``."""
    if vllm_version == "0.13.0" or effort is None or effort in HARMONY_EFFORTS:
        return
    if effort == "none":
        raise _bad_request_033(
            "Harmony does not support reasoning_effort='none'", "reasoning_effort"
        )
    supported = ", ".join(reversed(HARMONY_EFFORTS))
    message = (
        f"reasoning_effort='{effort}' is not supported by Harmony. "
        f"Supported values are: {supported}."
    )
    raise _bad_request_033(message, "reasoning_effort")


def check_model(
    model: object, served_model_names: Sequence[str], vllm_version: str = "0.13.0"
) -> None:
    """A model the server does not serve is vLLM's 404 (an empty or absent one is the default);
    0.33.0 names the field and lists the served names."""
    if model and model not in served_model_names:
        message = f"The model `{model}` does not exist."
        if vllm_version == "0.13.0":
            raise Rejection(404, wire.error_body(message, "NotFoundError", 404))
        message += f" Valid aliases: {', '.join(served_model_names)}."
        raise Rejection(404, wire033.error_body_param(message, "NotFoundError", 404, "model"))


def engine_dead(vllm_version: str = "0.13.0") -> Rejection:
    """vLLM checks the model, then meets the engine's ``EngineDeadError``: a 500."""
    if vllm_version == "0.13.0":
        body = wire.error_body(wire.ENGINE_DEAD_MESSAGE, "Internal Server Error", 500)
    else:
        body = wire.error_body(wire033.ENGINE_DEAD_MESSAGE, "InternalServerError", 500)
    return Rejection(500, body)


def check_n(body: dict[str, Any]) -> None:
    """The mock generates one choice only."""
    if (body.get("n") or 1) != 1:
        raise Rejection(400, wire.error_body("mock: only n=1 is supported", "BadRequestError", 400))


def context_too_long(max_model_len: int, prompt_tokens: int) -> Rejection:
    """vLLM's refusal of a prompt that leaves no room to generate."""
    message = (
        f"This model's maximum context length is {max_model_len} tokens. However, "
        f"your request has {prompt_tokens} input tokens. Please reduce the length of "
        "the input messages."
    )
    return Rejection(400, wire.error_body(message, "BadRequestError", 400))
