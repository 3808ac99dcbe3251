"""The mock's injected faults: their names, the ``NAME[:key=value,...]`` spec, which request a
fault hits, and what an ``error`` fault says (its bytes are each API's wire format's).

Pure: no I/O, no clock, only the standard library. A bad spec is a
:class:`~gptoss_modal._exceptions.ConfigError` naming the part of the spec at fault (``fault``,
``fault.after``, ...) and what is allowed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from gptoss_modal._exceptions import ConfigError

__all__ = [
    "DEFAULT_STALL_S",
    "FAULTS",
    "FAULT_HEADER",
    "Fault",
    "choose_fault",
    "error_kind",
    "parse_fault",
]

FAULTS = ("error", "drop", "stall", "malformed", "http-500", "http-503", "http-429", "dead")
FAULT_HEADER = "X-Mock-Fault"
DEFAULT_STALL_S = 3600.0
_ERROR_CODES = (400, 500)  # an in-stream error is vLLM's BadRequestError or its 500
_OPTION_TYPES = {"after": int, "code": int, "rate": float, "seconds": float, "message": str}


@dataclass(frozen=True)
class Fault:
    """One fault: its name and options (``after`` events, ``rate``, ``seconds``, ...)."""

    name: str
    after: int | None = None
    rate: float = 1.0
    seconds: float = DEFAULT_STALL_S
    code: int = 500
    message: str | None = None

    @property
    def http_status(self) -> int | None:
        """The status of an ``http-NNN`` fault (sent before any byte of a stream), else None."""
        return int(self.name[5:]) if self.name.startswith("http-") else None


def _option(item: str) -> tuple[str, int | float | str]:
    key, sep, text = item.partition("=")
    if not sep:
        raise ConfigError("fault", item, "options written key=value")
    kind = _OPTION_TYPES.get(key)
    if kind is None:
        raise ConfigError("fault", key, f"an option among {', '.join(_OPTION_TYPES)}")
    try:
        return key, kind(text)
    except ValueError as exc:
        what = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
        raise ConfigError(f"fault.{key}", text, f"{what}, e.g. {key}=2") from exc


def parse_fault(spec: str) -> Fault:
    """Read ``NAME[:key=value,...]`` (e.g. ``drop:after=5`` or ``error:rate=0.1,code=400``)."""
    name, _, options = spec.strip().partition(":")
    if name not in FAULTS:
        raise ConfigError("fault", name, f"a known fault: {', '.join(FAULTS)}")
    kwargs = dict(_option(o) for o in (o.strip() for o in options.split(",")) if o)
    fault = Fault(name, **kwargs)  # type: ignore[arg-type]  # each value has its option's type
    if not 0.0 <= fault.rate <= 1.0:
        raise ConfigError("fault.rate", fault.rate, "within [0, 1]")
    if fault.code not in _ERROR_CODES:
        raise ConfigError("fault.code", fault.code, "400 (BadRequestError) or 500")
    return fault


def choose_fault(
    header: str | None, server_fault: Fault | None, seed: int, number: int
) -> Fault | None:
    """The fault of request ``number``: its own header's, else the server's when its ``rate``
    draw (seeded by the server seed and the number, so repeatable) hits; ``dead`` server-wide is
    the server's state, not a request's fault. A bad header is a ``ConfigError``."""
    if header:
        return parse_fault(header)
    if server_fault is None or server_fault.name == "dead":
        return None
    rng = random.Random(f"{seed}:fault:{number}")  # noqa: S311 - a seeded workload
    return server_fault if rng.random() < server_fault.rate else None


def error_kind(fault: Fault) -> tuple[str, str]:
    """An ``error`` fault's message and vLLM error type."""
    if fault.code == 400:
        return fault.message or "mock: injected error", "BadRequestError"
    return fault.message or "Internal server error", "InternalServerError"
