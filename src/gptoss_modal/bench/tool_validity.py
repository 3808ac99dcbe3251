"""Whether each tool call a reply made is one an agent could run: pure, calls in, verdicts out.

gpt-oss's most reported failures under load are broken tool calls: harmony markup leaking into
a tool's name or the content (``<|channel|>``, ``<|constrain|>``, ``to=functions.``; vLLM
#32587), argument JSON cut short (#30204), harmony errors mid-stream (#46464, #57099). A call
is checked, in order, for:

``harmony_leak``    harmony markup in its name or arguments (or, with the call, in the content)
``unknown_tool``    a name the request did not offer
``cut_by_max_tokens`` the reply stopped at ``max_tokens`` (``finish_reason`` ``length``) with
                    this call open, so its arguments may be cut
``not_json``        arguments that are not a JSON object
``schema``          arguments that fail the tool's JSON schema (``jsonschema``, the schema's
                    own draft)

A call may fail several checks; it is invalid when it fails any, and counted once. A request on
a turn that asked for a call and failed before one arrived counts as one invalid attempt under
its error kind (``upstream_...``, ``incomplete_stream``, ...), a call open when its stream
failed gets that error kind among its problems (vLLM 0.13.0 ends a call cut by ``max_tokens``
in an error event: ``not_json`` and ``upstream_400``), and a turn whose content leaked markup
without a call counts as one ``harmony_leak``: the calls an agent lost. The rate over a level
comes with its sampling error (:class:`ValidityTally`: the binomial standard error and a 95%
Wilson interval), so a known fault rate can be checked against it.
"""

from __future__ import annotations

import collections
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import jsonschema
import msgspec

__all__ = [
    "CUT",
    "HARMONY_LEAK",
    "NOT_JSON",
    "SCHEMA",
    "UNKNOWN_TOOL",
    "WILSON_Z",
    "CallVerdict",
    "ToolSchemas",
    "ValidityTally",
    "check_call",
    "has_harmony_markup",
    "wilson_interval",
]

HARMONY_LEAK: Final = "harmony_leak"
UNKNOWN_TOOL: Final = "unknown_tool"
CUT: Final = "cut_by_max_tokens"
NOT_JSON: Final = "not_json"
SCHEMA: Final = "schema"
WILSON_Z: Final = 1.959964  # the normal quantile of a two-sided 95% interval

# Harmony's special tokens (<|start|>, <|channel|>, <|constrain|>, <|call|>, ...) and the
# recipient header a tool call's name comes from; none belongs in a name, arguments or content.
_MARKUP: Final = re.compile(r"<\|[a-z_]+\|>|\bto=functions\.")
_JSON: Final = msgspec.json.Decoder()


def has_harmony_markup(text: str) -> bool:
    """Whether ``text`` holds a harmony special token or a ``to=functions.`` recipient."""
    return _MARKUP.search(text) is not None


class ToolSchemas:
    """The tools a request offered, by name: one validator per tool, built once."""

    def __init__(self, tools: Iterable[Mapping[str, Any]]) -> None:
        self._validators: dict[str, Any] = {}
        for tool in tools:
            function = tool.get("function", tool)  # chat nests it; Responses tools are flat
            name = function.get("name")
            if isinstance(name, str):
                schema = function.get("parameters") or {"type": "object"}
                cls = jsonschema.validators.validator_for(schema)
                cls.check_schema(schema)  # a bad schema is the benchmark's bug: say so at once
                self._validators[name] = cls(schema)

    @property
    def names(self) -> frozenset[str]:
        """The offered tools' names."""
        return frozenset(self._validators)

    def errors(self, name: str, arguments: Any) -> list[str]:
        """What is wrong with ``arguments`` for tool ``name`` (empty: they fit its schema)."""
        validator = self._validators[name]
        return [error.message for error in validator.iter_errors(arguments)]


@dataclass(frozen=True, slots=True)
class CallVerdict:
    """One call's checks: its name, and the problems found (empty: valid)."""

    name: str
    problems: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        """Whether the call passed every check."""
        return not self.problems


def check_call(
    name: str,
    arguments: str,
    schemas: ToolSchemas,
    *,
    finish_reason: str | None = None,
    content: str = "",
) -> CallVerdict:
    """Every check of the module docstring applied to one call."""
    problems: list[str] = []
    if has_harmony_markup(name) or has_harmony_markup(arguments) or has_harmony_markup(content):
        problems.append(HARMONY_LEAK)
    known = name in schemas.names
    if not known:
        problems.append(UNKNOWN_TOOL)
    if finish_reason == "length":
        problems.append(CUT)
    try:
        parsed = _JSON.decode(arguments)
    except msgspec.DecodeError:
        problems.append(NOT_JSON)
    else:
        if not isinstance(parsed, dict):
            problems.append(NOT_JSON)
        elif known and schemas.errors(name, parsed):
            problems.append(SCHEMA)
    return CallVerdict(name, tuple(problems))


def wilson_interval(invalid: int, total: int, z: float = WILSON_Z) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``invalid / total`` (``(0, 1)`` for none)."""
    if total <= 0:
        return 0.0, 1.0
    p = invalid / total
    denominator = 1.0 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    # Exact at the ends (0 and 1), and never excluding p itself through rounding.
    low = 0.0 if invalid == 0 else min(p, max(0.0, centre - half))
    high = 1.0 if invalid == total else max(p, min(1.0, centre + half))
    return low, high


@dataclass
class ValidityTally:
    """A level's tool-call attempts: how many, how many invalid, and the problems by kind."""

    calls: int = 0
    invalid: int = 0
    problems: collections.Counter[str] = field(default_factory=collections.Counter)

    def add(self, verdict: CallVerdict) -> None:
        """Count one checked call."""
        self.calls += 1
        if not verdict.valid:
            self.invalid += 1
            self.problems.update(verdict.problems)

    def lost(self, kind: str) -> None:
        """Count one attempt that produced no call (``kind``: an error kind, or a leak)."""
        self.calls += 1
        self.invalid += 1
        self.problems[kind] += 1

    def extend(self, verdicts: Sequence[CallVerdict], lost: Sequence[str] = ()) -> None:
        """Count a request's calls and the attempts it lost."""
        for verdict in verdicts:
            self.add(verdict)
        for kind in lost:
            self.lost(kind)

    @property
    def rate(self) -> float | None:
        """The invalid share of attempts; ``None`` with none."""
        return self.invalid / self.calls if self.calls else None

    @property
    def standard_error(self) -> float | None:
        """The binomial standard error of :attr:`rate`, sqrt(p (1 - p) / n)."""
        rate = self.rate
        return None if rate is None else math.sqrt(rate * (1 - rate) / self.calls)

    @property
    def interval(self) -> tuple[float, float] | None:
        """The 95% Wilson interval of :attr:`rate` (``None`` with no attempts)."""
        return wilson_interval(self.invalid, self.calls) if self.calls else None
