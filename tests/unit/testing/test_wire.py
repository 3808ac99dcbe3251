"""The mock's byte layouts: valid JSON for any text, vLLM's key order, json.dumps errors."""

from __future__ import annotations

import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing._engine import Delta


def data(event: bytes) -> dict[str, object]:
    """The JSON of one ``data:`` event."""
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    parsed: dict[str, object] = orjson.loads(event[6:-2])
    return parsed


@given(st.text(), st.sampled_from(["reasoning", "content", "tool_args", "tool_start"]))
def test_every_delta_is_valid_json_carrying_the_text(text: str, kind: str) -> None:
    """Any text, in any kind of delta, comes back out of the chunk's JSON unchanged."""
    writer = wire.ChunkWriter("chatcmpl-x", 1, "llm")
    chunk = data(writer.chunk(writer.delta_json(Delta(kind, text, 0), "chatcmpl-tool-1"), 3))
    delta = chunk["choices"][0]["delta"]  # type: ignore[index]
    if kind == "reasoning":
        assert delta == {"reasoning": text, "reasoning_content": text}
    elif kind == "content":
        assert delta == {"content": text, "reasoning_content": None}
    elif kind == "tool_args":
        assert delta["tool_calls"][0]["function"] == {"arguments": text}
    else:
        assert delta["tool_calls"][0]["function"] == {"name": text, "arguments": ""}


def test_chunks_keep_vllms_key_order() -> None:
    """Role, content and finish chunks list their keys in vLLM's order."""
    writer = wire.ChunkWriter("chatcmpl-x", 5, "llm", continuous_usage=True, prompt_tokens=9)
    assert list(data(writer.role())) == [
        "id", "object", "created", "model", "choices", "usage", "prompt_token_ids",
    ]  # fmt: skip
    finish = data(writer.chunk(writer.delta_json(Delta(None)), 4, "stop", None))
    assert list(finish["choices"][0]) == [  # type: ignore[index]
        "index", "delta", "logprobs", "finish_reason", "stop_reason", "token_ids",
    ]  # fmt: skip
    assert finish["usage"] == {"prompt_tokens": 9, "total_tokens": 13, "completion_tokens": 4}


def test_the_newer_shape_has_no_reasoning_content() -> None:
    """The v0.16 shape carries only ``reasoning``."""
    writer = wire.ChunkWriter("chatcmpl-x", 5, "llm", reasoning_content=False)
    assert data(writer.chunk(writer.delta_json(Delta("reasoning", "hm")), 1))["choices"][0][  # type: ignore[index]
        "delta"
    ] == {"reasoning": "hm"}
    assert b"reasoning_content" not in writer.role()


def test_in_stream_errors_have_json_dumps_spacing() -> None:
    """0.13.0 writes in-stream errors with json.dumps: a space after every , and :."""
    event = wire.streaming_error("boom", "InternalServerError", 500)
    assert event == (
        b'data: {"error": {"message": "boom", "type": "InternalServerError", '
        b'"param": null, "code": 500}}\n\n'
    )
    assert json.loads(event[6:]) == {
        "error": {"message": "boom", "type": "InternalServerError", "param": None, "code": 500}
    }
