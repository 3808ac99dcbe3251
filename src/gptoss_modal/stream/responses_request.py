"""The JSON body of a streamed Responses API request (``POST /v1/responses``), checked.

:func:`build_response_request` refuses, with a :class:`~gptoss_modal.ConfigError` naming the
field, what vLLM would answer with a 400, so a typo fails at once and not after a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.stream.request import REASONING_EFFORTS

__all__ = ["build_response_request", "response_tools"]


def response_tools(tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Tool definitions in the Responses API's flat shape: a chat-completions function tool
    (``{"type": "function", "function": {...}}``) is flattened, any other tool passes as is, so
    one tools file serves both APIs."""
    flat: list[dict[str, Any]] = []
    for tool in tools:
        function = tool.get("function")
        if tool.get("type") == "function" and isinstance(function, Mapping):
            flat.append({"type": "function", **function})
        else:
            flat.append(dict(tool))
    return flat


def build_response_request(
    input: str | Sequence[Mapping[str, Any]],
    *,
    instructions: str | None = None,
    model: str | None = None,
    reasoning_effort: str | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    max_output_tokens: int | None = None,
    previous_response_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON body of a streamed Responses request.

    ``input`` is a string (one user message) or a list of input items (messages,
    ``function_call_output`` items, ...). ``tools`` may be in either API's shape
    (:func:`response_tools`). ``instructions`` is the system/developer text;
    ``reasoning_effort`` becomes ``reasoning.effort``; ``previous_response_id`` continues a
    response the server stored (vLLM needs ``VLLM_ENABLE_RESPONSES_API_STORE=1``). ``extra`` is
    merged last. Raises :class:`ConfigError` for an empty input, a ``reasoning_effort`` harmony
    does not support, or ``max_output_tokens`` below 1.
    """
    if isinstance(input, str):
        items: str | list[Mapping[str, Any]] = input
    else:
        items = list(input)
        if not items:
            raise ConfigError("input", [], "a string or at least one input item")
    if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
        raise ConfigError(
            "reasoning_effort", reasoning_effort, f"one of {', '.join(REASONING_EFFORTS)}"
        )
    if max_output_tokens is not None and max_output_tokens < 1:
        raise ConfigError("max_output_tokens", max_output_tokens, "a positive number of tokens")
    body: dict[str, Any] = {"input": items, "stream": True}
    optional = {
        "model": model,
        "instructions": instructions,
        "reasoning": {"effort": reasoning_effort} if reasoning_effort is not None else None,
        "tools": response_tools(tools) if tools else None,
        "max_output_tokens": max_output_tokens,
        "previous_response_id": previous_response_id,
    }
    body.update((key, value) for key, value in optional.items() if value is not None)
    if extra:
        body.update(extra)
    return body
