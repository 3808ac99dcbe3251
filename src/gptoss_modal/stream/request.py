"""The JSON body of a streamed chat completion, checked before it is sent.

:func:`build_chat_request` refuses, with a :class:`~gptoss_modal.ConfigError` naming the field,
what vLLM 0.13.0 would answer with a 400, so a typo fails at once and not after a round trip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.stream._checks import chat_request

__all__ = ["REASONING_EFFORTS", "build_chat_request"]

REASONING_EFFORTS: Final = ("low", "medium", "high")  # what vLLM 0.13.0 accepts


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
) -> dict[str, Any]:
    """The JSON body of a streamed chat completion request.

    ``messages`` is a list of OpenAI chat messages, or a string for one user message; ``system``
    prepends a system message. Usage is always requested (``stream_options.include_usage``);
    ``continuous_usage`` asks vLLM to put the running usage on every chunk. ``extra`` is merged
    last (``ignore_eos``, ``seed``, ``temperature``, ...). Raises :class:`ConfigError` for a
    ``reasoning_effort`` vLLM would reject or an empty message list.
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
    _check_options(reasoning_effort, max_tokens)
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


def _check_options(reasoning_effort: str | None, max_tokens: int | None) -> None:
    """Refuse the option values vLLM 0.13.0 answers with a 400."""
    if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
        raise ConfigError(
            "reasoning_effort", reasoning_effort, f"one of {', '.join(REASONING_EFFORTS)}"
        )
    if max_tokens is not None and max_tokens < 1:
        raise ConfigError("max_tokens", max_tokens, "a positive number of tokens")
