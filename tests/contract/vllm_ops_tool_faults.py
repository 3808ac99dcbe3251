"""Oracle ops for the mock's tool-call faults: what vLLM's own code writes when
``openai_harmony`` raises while it parses gpt-oss output.

Runs only under a cached vLLM venv's interpreter (loaded by ``vllm_oracle.py``). A real
``openai_harmony.HarmonyError`` goes through each version's own error code: 0.13.0's stream
generator catches it and writes ``create_streaming_error_response(str(e))``, and its
``create_chat_completion`` route turns it into ``HTTPException(500, str(e))`` answered by the
app's HTTPException handler (transcribed here: it is a closure inside ``build_app``); 0.33.0's
stream generator writes ``create_error_response(e)`` and its app-wide exception handler
answers a non-streamed request with the same.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any

import vllm
from openai_harmony import HarmonyError

V033 = vllm.__version__.startswith("0.33")


def _stream_013(error: HarmonyError) -> str:
    from vllm.entrypoints.openai.serving_engine import OpenAIServing

    serving = object.__new__(OpenAIServing)
    serving.log_error_stack = False
    return str(serving.create_streaming_error_response(str(error)))


def _reply_013(error: HarmonyError) -> tuple[int, str]:
    from fastapi.responses import JSONResponse
    from vllm.entrypoints.openai.protocol import ErrorInfo, ErrorResponse

    code = HTTPStatus.INTERNAL_SERVER_ERROR
    err = ErrorResponse(error=ErrorInfo(message=str(error), type=code.phrase, code=code.value))
    response = JSONResponse(err.model_dump(), status_code=code.value)
    return response.status_code, bytes(response.body).decode()


def _stream_033(error: HarmonyError) -> str:
    from vllm.entrypoints.serve import create_error_response

    return str(create_error_response(error).model_dump_json())


def _reply_033(error: HarmonyError) -> tuple[int, str]:
    from vllm.entrypoints.serve.exception_handling.handlers.exception import exception_handler

    request = SimpleNamespace(
        app=SimpleNamespace(state=SimpleNamespace(args=SimpleNamespace(log_error_stack=False))),
        state=SimpleNamespace(),
    )
    response = asyncio.run(exception_handler(request, error))
    return response.status_code, bytes(response.body).decode()


def op_harmony_error(req: dict[str, Any]) -> dict[str, Any]:
    """The in-stream event data and the non-streamed (status, body) for a HarmonyError."""
    error = HarmonyError(req["message"])
    stream, reply = (_stream_033, _reply_033) if V033 else (_stream_013, _reply_013)
    status, body = reply(error)
    return {"ok": True, "data": stream(error), "status": status, "body": body}


def op_prompt_tokens_details(req: dict[str, Any]) -> dict[str, Any]:
    """``usage.prompt_tokens_details`` as the version's serving code builds it under
    ``--enable-prompt-tokens-details`` (0.13.0's inline rule; 0.33.0's own helper)."""
    cached, created = req["cached_tokens"], req["created_cache_tokens"]
    if V033:
        from vllm.entrypoints.openai.chat_completion.serving import _make_prompt_tokens_details

        details = _make_prompt_tokens_details(True, cached, created, None)
    else:
        from vllm.entrypoints.openai.protocol import PromptTokenUsageInfo

        details = PromptTokenUsageInfo(cached_tokens=cached) if cached else None
    dumped = None if details is None else json.loads(details.model_dump_json())
    return {"ok": True, "details": dumped}


OPS = {"harmony_error": op_harmony_error, "prompt_tokens_details": op_prompt_tokens_details}
