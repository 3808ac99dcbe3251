"""Durations written as text (``90``, ``90s``, ``1.5m``, ``2h``, ``500ms``): the one parser the
benchmark's settings and every CLI option read, so they accept and refuse the same words."""

from __future__ import annotations

import re
from typing import Final

from gptoss_modal._exceptions import ConfigError

__all__ = ["parse_duration"]

_DURATION: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
EXAMPLES: Final = "90, 90s, 1.5m, 30m, 2h or 500ms"


def parse_duration(text: str, field: str = "--duration", *, allow_zero: bool = False) -> float:
    """Seconds in ``text`` (plain seconds, or ms, s, m, h; case and outer spaces ignored).

    :class:`ConfigError` naming ``field`` for anything else, and for zero unless ``allow_zero``.
    """
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match[1]) * _UNIT_S[match[2]] if match else -1.0
    if seconds < 0 or (seconds == 0 and not allow_zero):
        what = "a duration" if allow_zero else "a positive duration"
        raise ConfigError(field, text, f"{what} such as {EXAMPLES}")
    return seconds
