"""The JSON body of a streamed chat completion, checked before it is sent.

:func:`build_chat_request` refuses, with a :class:`~gptoss_modal.ConfigError` naming the field,
what vLLM 0.13.0 would answer with a 400, so a typo fails at once and not after a round trip.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, Final

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VLLM_VERSIONS
from gptoss_modal.stream._checks import chat_request

__all__ = ["HARMONY_EFFORTS", "REASONING_EFFORTS", "build_chat_request", "reasoning_efforts"]

HARMONY_EFFORTS: Final = ("low", "medium", "high")  # what gpt-oss's harmony format renders
REASONING_EFFORTS: Final = HARMONY_EFFORTS  # sent as given by every supported version
_REQUEST_MODEL_EFFORTS: Final[Mapping[str, tuple[str, ...]]] = {
    "0.13.0": HARMONY_EFFORTS,
    "0.33.0": ("none", "minimal", "low", "medium", "high", "xhigh", "max"),
}


def reasoning_efforts(vllm_version: str = DEFAULT_VLLM_VERSION) -> tuple[str, ...]:
    """The ``reasoning_effort`` values that version's ``ChatCompletionRequest`` accepts."""
    if vllm_version not in _REQUEST_MODEL_EFFORTS:
        raise ConfigError("vllm_version", vllm_version, f"one of {', '.join(VLLM_VERSIONS)}")
    return _REQUEST_MODEL_EFFORTS[vllm_version]


def build_chat_request(
    messages: str | Sequence[Mapping[str, Any]],
    *,
    system: str | None = None,
    model: str | None = None,
    reasoning_effort: str | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    max_tokens: int | None = None,
    continuous_usage: bool = False,
    extra: Mapping[str, Any] | None = None,
    vllm_version: str = DEFAULT_VLLM_VERSION,
    mapped_efforts: Collection[str] = (),
) -> dict[str, Any]:
    """The JSON body of a streamed chat completion request.

    ``messages`` is a list of OpenAI chat messages, or a string for one user message; ``system``
    prepends a system message. Usage is always requested (``stream_options.include_usage``);
    ``continuous_usage`` asks vLLM to put the running usage on every chunk. ``extra`` is merged
    last (``ignore_eos``, ``seed``, ``temperature``, ...). ``vllm_version`` is the server's;
    ``mapped_efforts`` the efforts its ``--reasoning-effort-map`` maps (0.33.0). Raises
    :class:`ConfigError` for a ``reasoning_effort`` that server would reject or an empty
    message list.
    """
    chat_request(  # each argument's type, with a ConfigError naming it
        messages,
        system=system,
        model=model,
        reasoning_effort=reasoning_effort,
        tools=tools,
        max_tokens=max_tokens,
        continuous_usage=continuous_usage,
        extra=extra,
    )
    chat = _chat_messages(messages, system)
    _check_effort(reasoning_effort, vllm_version, mapped_efforts)
    _check_max_tokens(max_tokens)
    stream_options: dict[str, bool] = {"include_usage": True}
    if continuous_usage:
        stream_options["continuous_usage_stats"] = True
    body: dict[str, Any] = {"messages": chat, "stream": True, "stream_options": stream_options}
    optional = {
        "model": model,
        "reasoning_effort": reasoning_effort,
        "tools": list(tools) if tools else None,
        "max_tokens": max_tokens,
    }
    body.update((key, value) for key, value in optional.items() if value is not None)
    if extra:
        body.update(extra)
    return body


def _chat_messages(
    messages: str | Sequence[Mapping[str, Any]], system: str | None
) -> list[Mapping[str, Any]]:
    """The message list: a string is one user message; ``system`` goes first."""
    if isinstance(messages, str):
        chat: list[Mapping[str, Any]] = [{"role": "user", "content": messages}]
    else:
        chat = list(messages)
    if system is not None:
        chat.insert(0, {"role": "system", "content": system})
    if not chat:
        raise ConfigError("messages", [], "at least one chat message")
    return chat


def _check_effort(effort: str | None, vllm_version: str, mapped: Collection[str]) -> None:
    """Refuse an effort the version's request model refuses, or one it accepts but harmony
    refuses (unless the server maps it)."""
    accepted = reasoning_efforts(vllm_version)
    if effort is None or effort in HARMONY_EFFORTS:
        return
    if effort not in accepted:
        raise ConfigError("reasoning_effort", effort, f"one of {', '.join(HARMONY_EFFORTS)}")
    if effort not in mapped:
        raise ConfigError(
            "reasoning_effort",
            effort,
            f"one of {', '.join(HARMONY_EFFORTS)} (vLLM {vllm_version} renders only these for "
            f"gpt-oss; {effort!r} needs the server's --reasoning-effort-map)",
        )


def _check_max_tokens(max_tokens: int | None) -> None:
    """Refuse a ``max_tokens`` vLLM answers with a 400."""
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError("max_tokens", max_tokens, "a positive number of tokens")
