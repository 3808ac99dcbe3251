"""The request body: what it holds, and the options refused before sending."""

from __future__ import annotations

import re

import pytest

from gptoss_modal import REASONING_EFFORTS, ConfigError, build_chat_request
from gptoss_modal.stream.request import reasoning_efforts


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        ({"max_tokens": 0}, "max_tokens"),
    ],
)
def test_request_options_vllm_would_reject_are_config_errors(
    kwargs: dict[str, object], field: str
) -> None:
    """Options vLLM 0.13.0 rejects with a 400 are refused before sending, naming the field."""
    with pytest.raises(ConfigError, match=field):
        build_chat_request("hi", **kwargs)  # type: ignore[arg-type]


def test_empty_message_list_is_a_config_error() -> None:
    """A request needs at least one message."""
    with pytest.raises(ConfigError, match="messages"):
        build_chat_request([])


@pytest.mark.parametrize("effort", REASONING_EFFORTS)
def test_every_reasoning_effort_vllm_accepts_is_sent(effort: str) -> None:
    """Each effort in REASONING_EFFORTS goes into the body as given."""
    assert build_chat_request("hi", reasoning_effort=effort)["reasoning_effort"] == effort


def test_a_refused_effort_names_every_allowed_one() -> None:
    """The error for an unknown effort lists REASONING_EFFORTS, the one place they are written."""
    with pytest.raises(ConfigError) as caught:
        build_chat_request("hi", reasoning_effort="max", vllm_version="0.13.0")
    assert caught.value.allowed == f"one of {', '.join(REASONING_EFFORTS)}"


@pytest.mark.parametrize("effort", ["none", "minimal", "xhigh", "max"])
def test_efforts_033_accepts_but_harmony_refuses_need_the_servers_map(effort: str) -> None:
    """0.33.0's request model takes four more efforts, which harmony refuses: refused unless
    the server maps them, and the error says so; mapped, they are sent as given."""
    assert effort in reasoning_efforts("0.33.0")
    assert effort not in reasoning_efforts("0.13.0")
    with pytest.raises(ConfigError, match="reasoning-effort-map") as caught:
        build_chat_request("hi", reasoning_effort=effort, vllm_version="0.33.0")
    assert caught.value.field == "reasoning_effort"
    body = build_chat_request(
        "hi", reasoning_effort=effort, vllm_version="0.33.0", mapped_efforts=[effort]
    )
    assert body["reasoning_effort"] == effort


def test_a_mapped_effort_the_version_does_not_know_is_still_refused() -> None:
    """A map cannot make 0.13.0 (or 0.33.0) take a value outside its request model."""
    for version, effort in (("0.13.0", "max"), ("0.33.0", "ultra")):
        with pytest.raises(ConfigError, match="reasoning_effort"):
            build_chat_request(
                "hi", reasoning_effort=effort, vllm_version=version, mapped_efforts=[effort]
            )


def test_an_unknown_vllm_version_names_the_supported_ones() -> None:
    """The version is checked too, naming each supported one."""
    with pytest.raises(ConfigError, match=re.escape("0.13.0, 0.33.0")):
        reasoning_efforts("0.20.0")


def test_a_minimal_body_streams_with_usage_and_nothing_else() -> None:
    """A string prompt alone gives one user message, stream, include_usage and no other key."""
    assert build_chat_request("hi") == {
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_extra_fields_are_merged_last() -> None:
    """``extra`` is merged last, so it overrides what the builder set."""
    body = build_chat_request("hi", max_tokens=5, extra={"max_tokens": 9, "seed": 1})
    assert (body["max_tokens"], body["seed"]) == (9, 1)
