"""The requests vLLM 0.13.0 refuses before generating, with the exact reply it gives.

Pure: each check reads the request (or a number the planner derived) and raises
:class:`Rejection` carrying the status and body bytes vLLM sends; the contract tests compare
those bytes with vLLM's own FastAPI app.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from gptoss_modal.stream.request import REASONING_EFFORTS  # the one list of efforts
from gptoss_modal.testing import _wire as wire

__all__ = [
    "REASONING_EFFORTS",
    "Rejection",
    "check_chat_body",
    "check_content_type",
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


def check_content_type(content_type: str) -> None:
    """vLLM reads JSON bodies only (checked before the body is read)."""
    if content_type.lower().split(";", 1)[0] != "application/json":
        msg = "Unsupported Media Type: Only 'application/json' is allowed"
        raise Rejection(400, wire.validation_error([msg], endpoint_context=None))


def parse_json_body(raw: bytes, endpoint_context: str) -> dict[str, Any]:
    """The JSON object of a POST body, refused as FastAPI refuses bad JSON or a non-object;
    ``endpoint_context`` is the location FastAPI prints for the endpoint."""
    try:
        body = json.loads(raw)
    except json.JSONDecodeError as exc:
        err = _error(("body", exc.pos), "json_invalid", "JSON decode error", {}, error=exc.msg)
        raise Rejection(
            400, wire.validation_error([err], endpoint_context=endpoint_context)
        ) from exc
    if not isinstance(body, dict):
        err = _error(
            ("body",),
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
            body,
        )
        raise Rejection(400, wire.validation_error([err], endpoint_context=endpoint_context))
    return body


def check_chat_body(body: dict[str, Any], endpoint_context: str) -> None:
    """What ``ChatCompletionRequest``'s validation refuses: no ``messages``, an unknown
    ``reasoning_effort``, ``stream_options`` without ``stream``."""
    err = None
    effort = body.get("reasoning_effort")
    if "messages" not in body:
        err = _error(("body", "messages"), "missing", "Field required", body)
    elif effort is not None and effort not in REASONING_EFFORTS:
        expected = "'low', 'medium' or 'high'"
        msg = f"Input should be {expected}"
        err = _error(("body", "reasoning_effort"), "literal_error", msg, effort, expected=expected)
    elif body.get("stream_options") is not None and not body.get("stream"):
        text = "Stream options can only be defined when `stream=True`."
        err = _error(("body",), "value_error", f"Value error, {text}", body, error=ValueError(text))
    if err is not None:
        raise Rejection(400, wire.validation_error([err], endpoint_context=endpoint_context))


def check_model(model: object, served_model_names: Sequence[str]) -> None:
    """A model the server does not serve is vLLM's 404 (an empty or absent one is the default)."""
    if model and model not in served_model_names:
        message = f"The model `{model}` does not exist."
        raise Rejection(404, wire.error_body(message, "NotFoundError", 404))


def engine_dead() -> Rejection:
    """vLLM 0.13.0 checks the model, then meets the engine's ``EngineDeadError``: a 500."""
    return Rejection(500, wire.error_body(wire.ENGINE_DEAD_MESSAGE, "Internal Server Error", 500))


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
