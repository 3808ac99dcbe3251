"""The bytes vLLM 0.33.0 writes for chat completions, where they differ from 0.13.0's.

Pure. What 0.33.0's ``chat_completion/serving.py`` passes explicitly (and so
``model_dump_json(exclude_unset=True)`` keeps, ``None`` included): ``prompt_token_ids`` and
``prompt_text`` on the first chunk; ``token_ids`` in every later choice and
``kv_transfer_params`` beside it; ``stop_reason`` and ``weight_versions`` on the finish;
``system_fingerprint`` on the finish chunk when no usage chunk follows, else on the usage chunk
(which drops its nulls). No ``reasoning_content`` anywhere; usage carries
``completion_tokens_details.reasoning_tokens``. Errors name their ``param``. The contract tests
compare these bytes with 0.33.0's own app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from gptoss_modal.testing._harmony_v033 import Delta033
from gptoss_modal.testing._wire import error_body, random_id, response_tool_calls

ENGINE_DEAD_MESSAGE = "The server had an error while processing your request."


def _j(value: Any) -> bytes:
    return orjson.dumps(value)


def usage_json(prompt: int, completion: int, reasoning: int, prompt_details: bytes = b"") -> bytes:
    """``UsageInfo`` with its reasoning-token details (and the prompt's, when given), in
    vLLM's key order."""
    details = b'"prompt_tokens_details":' + prompt_details + b"," if prompt_details else b""
    return (
        b'{"prompt_tokens":%d,"total_tokens":%d,"completion_tokens":%d,%b'
        b'"completion_tokens_details":{"reasoning_tokens":%d}}'
        % (prompt, prompt + completion, completion, details, reasoning)
    )


class ChunkWriter033:
    """Serialises one 0.33.0 stream's chunks; what is constant per stream is built once."""

    def __init__(
        self,
        request_id: str,
        created: int,
        model: str,
        *,
        fingerprint: str,
        include_usage: bool,
        continuous_usage: bool = False,
        prompt_tokens: int = 0,
    ) -> None:
        self.head = (
            b'data: {"id":'
            + _j(request_id)
            + b',"object":"chat.completion.chunk","created":'
            + str(created).encode()
            + b',"model":'
            + _j(model)
            + b',"choices":'
        )
        self._fingerprint = _j(fingerprint)
        self._include_usage = include_usage
        self._continuous = continuous_usage
        self.prompt_tokens = prompt_tokens
        self.prompt_details = b""  # the usage chunk's prompt_tokens_details JSON, if set

    def role(self) -> bytes:
        """The first chunk: the role and empty content."""
        out = (
            self.head
            + b'[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,'
            + b'"finish_reason":null}]'
        )
        if self._continuous:
            out += b',"usage":' + usage_json(self.prompt_tokens, 0, 0)
        return out + b',"prompt_token_ids":null,"prompt_text":null}\n\n'

    @staticmethod
    def delta_json(delta: Delta033 | None, tool_call_id: str | None = None) -> bytes:
        """The ``delta`` object (``{}`` for a finish without text)."""
        if delta is None:
            return b"{}"
        parts = []
        if delta.content is not None:
            parts.append(b'"content":' + _j(delta.content))
        if delta.reasoning is not None:
            parts.append(b'"reasoning":' + _j(delta.reasoning))
        elif delta.reasoning_hidden:
            parts.append(b'"reasoning":null')
        if delta.tool is not None:
            index, name, arguments = delta.tool
            if name is not None:
                call = (
                    b'{"id":'
                    + _j(tool_call_id or "chatcmpl-tool-" + random_id())
                    + b',"type":"function","index":%d,"function":{"name":' % index
                    + _j(name)
                    + b',"arguments":'
                    + _j(arguments)
                    + b"}}"
                )
            else:
                call = b'{"index":%d,"function":{"arguments":' % index + _j(arguments) + b"}}"
            parts.append(b'"tool_calls":[' + call + b"]")
        return b"{" + b",".join(parts) + b"}"

    def chunk_body(
        self,
        delta: bytes,
        completion_tokens: int,
        reasoning_tokens: int,
        finish_reason: str | None = None,
        stop_reason: int | None = None,
    ) -> bytes:
        """A chunk without :attr:`head` (the same for every stream of a generation)."""
        if finish_reason is None:
            tail = b',"logprobs":null,"finish_reason":null,"token_ids":null}]'
        else:
            tail = (
                b',"logprobs":null,"finish_reason":'
                + _j(finish_reason)
                + b',"stop_reason":'
                + (b"null" if stop_reason is None else str(stop_reason).encode())
                + b',"token_ids":null,"weight_versions":null}]'
            )
        out = b'[{"index":0,"delta":' + delta + tail
        if self._continuous:
            usage = usage_json(self.prompt_tokens, completion_tokens, reasoning_tokens)
            out += b',"usage":' + usage
        if finish_reason is not None and not self._include_usage:
            out += b',"system_fingerprint":' + self._fingerprint
        return out + b',"kv_transfer_params":null}\n\n'

    def usage(self, completion_tokens: int, reasoning_tokens: int) -> bytes:
        """The usage chunk after the finish (``choices: []``, nulls dropped)."""
        usage = usage_json(
            self.prompt_tokens, completion_tokens, reasoning_tokens, self.prompt_details
        )
        return (
            self.head
            + b'[],"usage":'
            + usage
            + b',"system_fingerprint":'
            + self._fingerprint
            + b"}\n\n"
        )


def streaming_error(message: str, err_type: str, code: int) -> bytes:
    """An error raised while generating: ``ErrorResponse.model_dump_json()``, compact."""
    return b"data: " + error_body(message, err_type, code) + b"\n\n"


def error_body_param(message: str, err_type: str, code: int, param: str | None) -> bytes:
    """``ErrorResponse`` with its ``param``, as 0.33.0's JSONResponse writes it."""
    return _j({"error": {"message": message, "type": err_type, "param": param, "code": code}})


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
    reasoning_tokens: int,
    fingerprint: str,
    prompt_tokens_details: dict[str, Any] | None = None,
) -> bytes:
    """The non-streamed ``ChatCompletionResponse``, as ``JSONResponse(model_dump())``."""
    calls = response_tool_calls(tool_calls)
    message = {
        "role": "assistant",
        "content": content,
        "refusal": None,
        "annotations": None,
        "audio": None,
        "function_call": None,
        **({"tool_calls": calls} if calls else {}),  # its serializer drops an empty list
        "reasoning": reasoning,
    }
    choice = {
        "index": 0,
        "message": message,
        "logprobs": None,
        "finish_reason": finish_reason,
        "stop_reason": stop_reason,
        "token_ids": None,
        "routed_experts": None,
        "weight_versions": None,
    }
    usage = {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": prompt_tokens_details,
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }
    body = {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "service_tier": None,
        "system_fingerprint": fingerprint,
        "usage": usage,
        "prompt_logprobs": None,
        "prompt_token_ids": None,
        "prompt_text": None,
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }
    return _j(body)
