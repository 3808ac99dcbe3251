"""The bytes vLLM 0.13.0 writes for chat completions, built without pydantic: chunks, replies,
errors, model cards.

Pure. Each layout below is what vLLM's pydantic classes serialise to (``model_dump_json(
exclude_unset=True)`` for stream chunks, ``JSONResponse(model.model_dump())`` for JSON replies),
key for key; the contract tests compare these bytes with vLLM's own app. Field values are
escaped with orjson, which writes the same JSON text as pydantic (UTF-8, no ASCII escaping).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import orjson

from gptoss_modal.testing._engine import Delta

DONE = b"data: [DONE]\n\n"
SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
ENGINE_DEAD_MESSAGE = "EngineCore encountered an issue. See stack trace (above) for the root cause."


def random_id() -> str:
    """vLLM's ``random_uuid()``: 16 lowercase hex digits."""
    return secrets.token_hex(8)


def _j(value: Any) -> bytes:
    return orjson.dumps(value)


class ChunkWriter:
    """Serialises one stream's chunks; everything constant per stream is built once.

    ``reasoning_content=False`` gives the newer shape (vLLM 0.16 and later) with only
    ``reasoning`` and no deprecated ``reasoning_content`` key.
    """

    def __init__(
        self,
        request_id: str,
        created: int,
        model: str,
        *,
        reasoning_content: bool = True,
        continuous_usage: bool = False,
        prompt_tokens: int = 0,
    ) -> None:
        self._head = (
            b'data: {"id":'
            + _j(request_id)
            + b',"object":"chat.completion.chunk","created":'
            + str(created).encode()
            + b',"model":'
            + _j(model)
            + b',"choices":'
        )
        self._rc = reasoning_content
        self._continuous = continuous_usage
        self.prompt_tokens = prompt_tokens
        self._null_rc = b'"reasoning_content":null' if reasoning_content else b""
        self.prompt_details = b""  # the usage chunk's prompt_tokens_details JSON, if set

    def _usage(self, completion_tokens: int) -> bytes:
        p = self.prompt_tokens
        return b'{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d}' % (
            p,
            p + completion_tokens,
            completion_tokens,
        )

    def role(self) -> bytes:
        """The first chunk: the role, empty content, and (0.13.0) ``prompt_token_ids``."""
        delta = b'{"role":"assistant","content":""' + (b"," + self._null_rc if self._rc else b"")
        out = (
            self._head
            + b'[{"index":0,"delta":'
            + delta
            + b'},"logprobs":null,"finish_reason":null}]'
        )
        if self._continuous:
            out += b',"usage":' + self._usage(0)
        return out + b',"prompt_token_ids":null}\n\n'

    def delta_json(self, delta: Delta, tool_call_id: str | None = None) -> bytes:
        """The ``delta`` object of a chunk."""
        kind, text = delta.kind, delta.text
        if kind == "reasoning":
            t = _j(text)
            return b'{"reasoning":' + t + (b',"reasoning_content":' + t if self._rc else b"") + b"}"
        if kind == "content":
            return b'{"content":' + _j(text) + (b"," + self._null_rc if self._rc else b"") + b"}"
        prefix = b"{" + (self._null_rc + b"," if self._rc else b"")
        if kind == "tool_start":
            call = (
                b'{"id":'
                + _j(tool_call_id or "chatcmpl-tool-" + random_id())
                + b',"type":"function","index":%d,"function":{"name":' % delta.index
                + _j(text)
                + b',"arguments":""}}'
            )
            return prefix + b'"tool_calls":[' + call + b"]}"
        if kind == "tool_args":
            call = b'{"index":%d,"function":{"arguments":' % delta.index + _j(text) + b"}}"
            return prefix + b'"tool_calls":[' + call + b"]}"
        return b"{" + self._null_rc + b"}"

    @property
    def head(self) -> bytes:
        """What every chunk event of this stream starts with: ``data: {"id":...,"choices":``."""
        return self._head

    def chunk(
        self,
        delta: bytes,
        completion_tokens: int,
        finish_reason: str | None = None,
        stop_reason: int | None = None,
    ) -> bytes:
        """One content/reasoning/tool/finish chunk as an SSE event."""
        return self._head + self.chunk_body(delta, completion_tokens, finish_reason, stop_reason)

    def chunk_body(
        self,
        delta: bytes,
        completion_tokens: int,
        finish_reason: str | None = None,
        stop_reason: int | None = None,
    ) -> bytes:
        """:meth:`chunk` without :attr:`head`: the same for every stream of a generation, so a
        server can build it once and reuse it."""
        if finish_reason is None:
            tail = b',"logprobs":null,"finish_reason":null,"token_ids":null}]'
        else:
            tail = (
                b',"logprobs":null,"finish_reason":'
                + _j(finish_reason)
                + b',"stop_reason":'
                + (b"null" if stop_reason is None else str(stop_reason).encode())
                + b',"token_ids":null}]'
            )
        out = b'[{"index":0,"delta":' + delta + tail
        if self._continuous:
            out += b',"usage":' + self._usage(completion_tokens)
        return out + b"}\n\n"

    def usage(self, completion_tokens: int) -> bytes:
        """The usage chunk after the finish (``choices: []``)."""
        usage = self._usage(completion_tokens)
        if self.prompt_details:
            usage = usage[:-1] + b',"prompt_tokens_details":' + self.prompt_details + b"}"
        return self._head + b'[],"usage":' + usage + b"}\n\n"


def streaming_error(message: str, err_type: str, code: int) -> bytes:
    """An in-stream error event: 0.13.0 writes it with ``json.dumps`` (spaces after , and :)."""
    body = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def error_body(message: str, err_type: str, code: int) -> bytes:
    """vLLM's ``ErrorResponse`` as its JSONResponse writes it."""
    return _j({"error": {"message": message, "type": err_type, "param": None, "code": code}})


UNAUTHORIZED = b'{"error":"Unauthorized"}'


def injected_http_error(status: int) -> tuple[bytes, dict[str, str]]:
    """The body (vLLM's HTTP-error shape) and extra headers of the mock's ``http-NNN`` fault."""
    body = error_body(f"mock: injected HTTP {status}", HTTPStatus(status).phrase, status)
    return body, ({"Retry-After": "1"} if status == 429 else {})


def validation_error(errors: list[Any], *, endpoint_context: str | None) -> bytes:
    """vLLM's 400 for a request FastAPI rejected (``validation_exception_handler``).

    FastAPI's ``str(RequestValidationError)`` lists the errors and, for errors raised while
    reading the endpoint's body, the endpoint's source location; vLLM appends ``str(errors)``.
    """
    n = len(errors)
    text = f"{n} validation error{'s' if n != 1 else ''}:"
    for err in errors:
        text += f"\n  {err}"
    if endpoint_context:
        text += "\n\n" + endpoint_context
    errors_str = str(errors)
    message = f"{text} {errors_str}" if errors and errors_str != text else text
    return error_body(message, "Bad Request", 400)


def chat_endpoint_context(site_packages: str) -> str:
    """The endpoint location FastAPI 0.165 prints for ``POST /v1/chat/completions``."""
    return (
        f'  File "{site_packages}/vllm/entrypoints/utils.py", line 477, in '
        "create_chat_completion\n    POST /v1/chat/completions"
    )


def response_tool_calls(tool_calls: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """A non-streamed reply's ``tool_calls``: each (name, arguments) with a fresh call id (both
    versions write them alike)."""
    return [
        {
            "id": "chatcmpl-tool-" + random_id(),
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }
        for name, arguments in tool_calls
    ]


def chat_response(
    *,
    request_id: str,
    created: int,
    model: str,
    content: str | None,
    reasoning: str | None,
    tool_calls: Sequence[tuple[str, str]],
    finish_reason: str,
    stop_reason: int | None,
    prompt_tokens: int,
    completion_tokens: int,
    prompt_tokens_details: dict[str, Any] | None = None,
) -> bytes:
    """The non-streamed ``ChatCompletionResponse``, as ``JSONResponse(model_dump())``."""
    calls = response_tool_calls(tool_calls)
    body = {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": None,
                    "annotations": None,
                    "audio": None,
                    "function_call": None,
                    "tool_calls": calls,
                    "reasoning": reasoning,
                    "reasoning_content": reasoning,
                },
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": stop_reason,
                "token_ids": None,
            }
        ],
        "service_tier": None,
        "system_fingerprint": None,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
            "prompt_tokens_details": prompt_tokens_details,
        },
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "kv_transfer_params": None,
    }
    return _j(body)


def models_list(names: Sequence[str], root: str, max_model_len: int, created: int) -> bytes:
    """``GET /v1/models``: one card per served name."""
    cards = [
        {
            "id": name,
            "object": "model",
            "created": created,
            "owned_by": "vllm",
            "root": root,
            "parent": None,
            "max_model_len": max_model_len,
            "permission": [
                {
                    "id": "modelperm-" + random_id(),
                    "object": "model_permission",
                    "created": created,
                    "allow_create_engine": False,
                    "allow_sampling": True,
                    "allow_logprobs": True,
                    "allow_search_indices": False,
                    "allow_view": True,
                    "allow_fine_tuning": False,
                    "organization": "*",
                    "group": None,
                    "is_blocking": False,
                }
            ],
        }
        for name in names
    ]
    return _j({"object": "list", "data": cards})


# --- what the ``malformed`` fault sends ------------------------------------------------------

MALFORMED_REPLY = b'{"id": "chatcmpl-'  # a JSON reply cut short


def malformed_event(request_id: str) -> bytes:
    """A ``data:`` line that is not JSON (its object is never closed)."""
    return b'data: {"id":"' + request_id.encode() + b"\n\n"
