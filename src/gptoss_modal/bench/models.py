"""The served model's name from ``GET /v1/models``, for a run not told it (``--model``).

A plain ``vllm serve openai/gpt-oss-20b`` serves ``openai/gpt-oss-20b``, not this project's
``llm``; asking the server avoids a 404 for every request and records the real name.
"""

from __future__ import annotations

import json
from typing import Protocol, runtime_checkable

from gptoss_modal._exceptions import BenchmarkError, GptossModalError

__all__ = ["ModelsClient", "served_model"]


@runtime_checkable
class ModelsClient(Protocol):
    """What :func:`served_model` uses of :class:`gptoss_modal.stream.client.Client`."""

    async def call(self, method: str, path: str, *, timeout_s: float = ...) -> tuple[int, bytes]:
        """One small request: its status and body."""


async def served_model(client: ModelsClient, timeout_s: float = 30.0) -> str:
    """The first model ``/v1/models`` lists; :class:`BenchmarkError` saying what it answered
    when it lists none (give ``--model`` then)."""
    try:
        status, body = await client.call("GET", "/v1/models", timeout_s=timeout_s)
    except GptossModalError as exc:
        raise BenchmarkError(f"cannot read /v1/models ({exc}): give --model") from exc
    try:
        data = json.loads(body) if status == 200 else None
    except ValueError:
        data = None
    models = data.get("data") if isinstance(data, dict) else None
    if isinstance(models, list) and models and isinstance(models[0], dict):
        name = models[0].get("id")
        if isinstance(name, str) and name:
            return name
    raise BenchmarkError(f"/v1/models answered {status} with no model id: give --model")
