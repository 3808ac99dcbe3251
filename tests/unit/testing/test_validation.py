"""Request checks: each refusal carries vLLM's status and error body."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from gptoss_modal.testing import _validation as validation

CONTEXT = '  File "x", line 1, in f\n    POST /v1/chat/completions'


def _refusal(check: Callable[..., object], *args: object) -> tuple[int, dict[str, object]]:
    """The status and error object of the Rejection ``check(*args)`` raises."""
    with pytest.raises(validation.Rejection) as info:
        check(*args)
    body: dict[str, object] = json.loads(info.value.body)["error"]
    return info.value.status, body


def test_a_non_json_content_type_is_refused() -> None:
    """Only ``application/json`` (any parameters) is read."""
    validation.check_content_type("application/json; charset=utf-8")
    status, error = _refusal(validation.check_content_type, "text/plain")
    assert status == 400
    assert "Unsupported Media Type" in str(error["message"])


@pytest.mark.parametrize(
    ("raw", "kind"), [(b"{", "json_invalid"), (b"[1]", "model_attributes_type")]
)
def test_bad_json_is_refused_with_its_error_type(raw: bytes, kind: str) -> None:
    """Invalid JSON and a non-object are 400s naming pydantic's error type."""
    status, error = _refusal(validation.parse_json_body, raw, CONTEXT)
    assert status == 400
    assert kind in str(error["message"])


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({}, "Field required"),
        ({"messages": [], "reasoning_effort": "max"}, "'low', 'medium' or 'high'"),
        (
            {"messages": [], "stream_options": {"include_usage": True}},
            "Stream options can only be defined",
        ),
    ],
)
def test_chat_bodies_vllm_refuses(body: dict[str, object], words: str) -> None:
    """A missing ``messages``, an unknown effort and stream options without a stream are 400s."""
    status, error = _refusal(validation.check_chat_body, body, CONTEXT)
    assert (status, error["type"]) == (400, "Bad Request")
    assert words in str(error["message"])


def test_an_unknown_model_is_a_404_and_no_model_is_the_default() -> None:
    """A model not served is vLLM's NotFoundError; an absent one is allowed."""
    validation.check_model(None, ("llm",))
    validation.check_model("llm", ("llm",))
    status, error = _refusal(validation.check_model, "gpt-5", ("llm",))
    assert (status, error["type"]) == (404, "NotFoundError")
