"""The checks every public parameter of the client and the request builder goes through.

Each raises :class:`~gptoss_modal.ConfigError` naming the parameter and what is allowed; a
credential's value is never part of the error (it shows as ``<hidden>``). Nothing here is
public API.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from gptoss_modal._exceptions import ConfigError

__all__: list[str] = []  # internal to the stream package

# RFC 9110's token: what a header name may be made of.
HEADER_NAME: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# What a header value (and so a key) may not hold: C0 controls but HTAB, and DEL. A CR or LF
# would end the header; aiohttp raises a bare ValueError for them.
CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HIDDEN: Final = "<hidden>"


def seconds(
    name: str, value: object, *, none: str | None = None, zero: str | None = None
) -> float | None:
    """A positive, finite number of seconds; ``None`` or ``0`` only when ``none`` or ``zero``
    says what it means."""
    if value is None and none is not None:
        return None
    least = 0 if zero is not None else math.ulp(0)
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not least <= value < math.inf
    ):
        also = "".join(f", or {v} ({m})" for v, m in (("0", zero), ("None", none)) if m)
        raise ConfigError(name, value, f"a positive, finite number of seconds{also}")
    return float(value)


def count(name: str, value: object, *, minimum: int, what: str) -> int:
    """An ``int`` (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        least = "a positive" if minimum == 1 else f"an integer of at least {minimum}:"
        raise ConfigError(name, value, f"{least} {what}")
    return value


def optional_text(name: str, value: object, what: str) -> str | None:
    """A string or ``None``."""
    if value is not None and not isinstance(value, str):
        raise ConfigError(name, value, f"a string ({what}) or None")
    return value


def function(name: str, value: object, what: str) -> Callable[..., Any]:
    """Something callable."""
    if not callable(value):
        raise ConfigError(name, value, f"a function ({what})")
    return value


def credential(name: str, value: object) -> str | None:
    """An API key or other secret: a string without control characters, or ``None``.

    The error never holds the value: ``name`` is what the caller calls it (a parameter, an
    environment variable or an option).
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(name, f"<{type(value).__name__}>", "a string or None")
    if CONTROL_CHARACTERS.search(value):
        raise ConfigError(name, _HIDDEN, control_characters_hint())
    return value


def control_characters_hint() -> str:
    """What to do about a control character in a key or a header value."""
    return (
        "a value without control characters (CR, LF, NUL, DEL, ...); a key file saved with "
        "CRLF line ends leaves a CR at its end: remove it (e.g. tr -d '\\r')"
    )


def headers(name: str, value: object) -> dict[str, str]:
    """Extra request headers: names that are HTTP tokens, values without control characters.

    The error names the header (never its value).
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(name, f"<{type(value).__name__}>", "a mapping of header names to values")
    checked: dict[str, str] = {}
    for key, text in value.items():
        if not isinstance(key, str) or HEADER_NAME.fullmatch(key) is None:
            raise ConfigError(
                name, _HIDDEN, "header names made of letters, digits and -_.!#$%&'*+^`|~"
            )
        if not isinstance(text, str):
            raise ConfigError(f"{name}[{key!r}]", f"<{type(text).__name__}>", "a string")
        if CONTROL_CHARACTERS.search(text):
            raise ConfigError(f"{name}[{key!r}]", _HIDDEN, control_characters_hint())
        checked[key] = text
    return checked


def chat_request(
    messages: object,
    *,
    system: object,
    model: object,
    reasoning_effort: object,
    tools: object,
    max_tokens: object,
    continuous_usage: object,
    extra: object,
) -> None:
    """The types of :func:`~gptoss_modal.stream.request.build_chat_request`'s arguments."""
    if not isinstance(messages, str | Sequence) or (
        not isinstance(messages, str) and not all(isinstance(m, Mapping) for m in messages)
    ):
        raise ConfigError("messages", _shape(messages), "a string or a list of chat messages")
    optional_text("system", system, "the system message")
    optional_text("model", model, "the served model's name")
    optional_text("reasoning_effort", reasoning_effort, "low, medium or high")
    if tools is not None and (
        isinstance(tools, str | Mapping)
        or not isinstance(tools, Sequence)
        or not all(isinstance(t, Mapping) for t in tools)
    ):
        raise ConfigError("tools", _shape(tools), "a list of OpenAI tool definitions, or None")
    if max_tokens is not None:
        count("max_tokens", max_tokens, minimum=1, what="number of tokens, or None")
    if not isinstance(continuous_usage, bool):
        raise ConfigError("continuous_usage", continuous_usage, "True or False")
    if extra is not None and not (
        isinstance(extra, Mapping) and all(isinstance(k, str) for k in extra)
    ):
        raise ConfigError("extra", _shape(extra), "a mapping of request field names, or None")


def _shape(value: object) -> str:
    """What a wrong argument was, without its content (a prompt may be private)."""
    return f"<{type(value).__name__}>"
