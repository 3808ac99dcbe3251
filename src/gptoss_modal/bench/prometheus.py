"""Reading vLLM's ``/metrics``: the Prometheus text format, and what the benchmark takes from it.

:func:`parse_metrics` reads the text exposition format (version 0.0.4, what vLLM's
``prometheus_client`` writes): ``# HELP``/``# TYPE`` and other comments are skipped; each sample
is ``name{label="value",...} value [timestamp]`` with ``\\\\``, ``\\"`` and ``\\n`` escapes in
label values and ``NaN``/``+Inf``/``-Inf`` values. A line that is none of these raises
:class:`MetricsFormatError` naming the line.

The benchmark scrapes before and after each level and looks at differences, so a level's
numbers are its own (as long as nothing else uses the server meanwhile):

- :func:`spec_decode_between`: speculative decoding's acceptance rate
  ``Δaccepted / Δdraft_tokens`` and mean acceptance length ``1 + Δaccepted / Δdrafts``
  (vLLM's own definitions, from ``vllm:spec_decode_num_*_total``), and the acceptance rate at
  each draft position ``Δaccepted_per_pos[i] / Δdrafts``.
- :func:`histogram_mean_between`: a server-side histogram's mean over the level
  (``Δ_sum / Δ_count``), e.g. vLLM's own TTFT or queueing time.

Counters that went backwards (the server restarted) give ``None`` rather than a wrong number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from gptoss_modal._exceptions import MetricsFormatError

__all__ = [
    "ACCEPTED",
    "ACCEPTED_PER_POS",
    "DRAFTS",
    "DRAFT_TOKENS",
    "MetricsFormatError",
    "MetricsSnapshot",
    "Sample",
    "SpecDecode",
    "histogram_mean_between",
    "parse_metrics",
    "spec_decode_between",
]

DRAFTS: Final = "vllm:spec_decode_num_drafts"
DRAFT_TOKENS: Final = "vllm:spec_decode_num_draft_tokens"
ACCEPTED: Final = "vllm:spec_decode_num_accepted_tokens"
ACCEPTED_PER_POS: Final = "vllm:spec_decode_num_accepted_tokens_per_pos"

_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME: Final = re.compile(r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*\"")
_ESCAPES: Final = {"\\": "\\", '"': '"', "n": "\n"}
_SPECIAL_VALUES: Final = {"nan": math.nan, "+inf": math.inf, "inf": math.inf, "-inf": -math.inf}
_PREVIEW_CHARS: Final = 120


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample: metric name (with any ``_total``/``_sum``/``_count`` suffix), labels, value."""

    name: str
    labels: Mapping[str, str]
    value: float


def _fail(number: int, line: str, what: str) -> MetricsFormatError:
    shown = line if len(line) <= _PREVIEW_CHARS else line[:_PREVIEW_CHARS] + "..."
    return MetricsFormatError(f"/metrics line {number}: {what}: {shown!r}")


def _parse_value(text: str) -> float:
    special = _SPECIAL_VALUES.get(text.lower())
    if special is not None:
        return special
    if not text or text[-1].isalpha():  # float() would accept "infinity" and "nan" spellings
        raise ValueError(text)
    return float(text)


def _skip_blanks(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _parse_label_value(line: str, pos: int, number: int, name: str) -> tuple[str, int]:
    """The quoted value starting after ``="`` at ``pos``; returns it and the index after ``"``."""
    value: list[str] = []
    while True:
        if pos >= len(line):
            raise _fail(number, line, f"label {name} has no closing quote")
        char = line[pos]
        if char == '"':
            return "".join(value), pos + 1
        if char == "\\":
            escaped = _ESCAPES.get(line[pos + 1 : pos + 2])
            if escaped is None:
                raise _fail(number, line, f"label {name} has an unknown escape")
            value.append(escaped)
            pos += 2
            continue
        value.append(char)
        pos += 1


def _parse_labels(line: str, pos: int, number: int) -> tuple[dict[str, str], int]:
    """The labels starting after ``{`` at ``pos``; returns them and the index after ``}``."""
    labels: dict[str, str] = {}
    while True:
        pos = _skip_blanks(line, pos)
        if pos < len(line) and line[pos] == "}":
            return labels, pos + 1
        match = _LABEL_NAME.match(line, pos)
        if match is None:
            raise _fail(number, line, 'expected a label name and ="')
        name = match.group(1)
        labels[name], pos = _parse_label_value(line, match.end(), number, name)
        pos = _skip_blanks(line, pos)
        if pos < len(line) and line[pos] == ",":
            pos += 1
        elif pos >= len(line) or line[pos] != "}":
            raise _fail(number, line, "expected , or } after a label")


def parse_metrics(text: str) -> list[Sample]:
    """Every sample in a Prometheus text exposition, in order."""
    samples: list[Sample] = []
    for number, raw in enumerate(text.split("\n"), start=1):  # only LF ends a line
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _NAME.match(line)
        if match is None:
            raise _fail(number, raw, "expected a metric name")
        name = match.group(0)
        pos = match.end()
        labels: dict[str, str] = {}
        if pos < len(line) and line[pos] == "{":
            labels, pos = _parse_labels(line, pos + 1, number)
        elif pos < len(line) and line[pos] not in " \t":
            raise _fail(number, raw, "the metric name is followed by neither labels nor a space")
        rest = line[pos:].split()
        if not rest or len(rest) > 2:
            raise _fail(number, raw, "expected a value (and an optional timestamp) after the name")
        try:
            value = _parse_value(rest[0])
            if len(rest) == 2:
                int(rest[1])
        except ValueError:
            raise _fail(number, raw, "the value or timestamp is not a number") from None
        samples.append(Sample(name, labels, value))
    return samples


class MetricsSnapshot:
    """One scrape of ``/metrics``, with sums over label sets (engines, models, reasons)."""

    __slots__ = ("_totals", "samples")

    def __init__(self, samples: list[Sample]) -> None:
        self.samples = samples
        totals: dict[str, float] = {}
        for sample in samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        self._totals = totals

    @classmethod
    def parse(cls, text: str) -> MetricsSnapshot:
        """Parse the text of a scrape (raises :class:`MetricsFormatError`)."""
        return cls(parse_metrics(text))

    def total(self, name: str) -> float | None:
        """The sum of ``name`` over its label sets; a counter is found with or without
        ``_total``. ``None`` when the server does not export it."""
        for candidate in (f"{name}_total", name):
            if candidate in self._totals:
                return self._totals[candidate]
        return None

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """``name`` summed per value of ``label`` (e.g. spec-decode acceptance per position)."""
        out: dict[str, float] = {}
        for candidate in (f"{name}_total", name):
            for sample in self.samples:
                if sample.name == candidate and label in sample.labels:
                    key = sample.labels[label]
                    out[key] = out.get(key, 0.0) + sample.value
            if out:
                break
        return out


def _delta(before: MetricsSnapshot, after: MetricsSnapshot, name: str) -> float | None:
    start, end = before.total(name), after.total(name)
    if end is None:
        return None
    change = end - (start or 0.0)
    return change if change >= 0 else None


@dataclass(frozen=True, slots=True)
class SpecDecode:
    """Speculative decoding over one level: counts, and vLLM's acceptance measures.

    ``acceptance_rate`` is accepted draft tokens over proposed draft tokens;
    ``acceptance_length`` the mean tokens a verification step yields (one plus the accepted
    drafts per draft); ``per_position[i]`` the fraction of drafts whose token ``i`` was accepted.
    Rates are ``None`` when no draft was made during the level.
    """

    drafts: float
    draft_tokens: float
    accepted: float
    acceptance_rate: float | None
    acceptance_length: float | None
    per_position: tuple[float, ...]


def spec_decode_between(before: MetricsSnapshot, after: MetricsSnapshot) -> SpecDecode | None:
    """The spec-decode counters' change between two scrapes; ``None`` if the server does not
    export them (speculative decoding off) or they went backwards (a restart)."""
    drafts = _delta(before, after, DRAFTS)
    draft_tokens = _delta(before, after, DRAFT_TOKENS)
    accepted = _delta(before, after, ACCEPTED)
    if drafts is None or draft_tokens is None or accepted is None:
        return None
    start = before.by_label(ACCEPTED_PER_POS, "position")
    end = after.by_label(ACCEPTED_PER_POS, "position")
    positions = sorted(end, key=lambda p: (not p.isdigit(), int(p) if p.isdigit() else 0, p))
    per_position = tuple((end[p] - start.get(p, 0.0)) / drafts for p in positions) if drafts else ()
    return SpecDecode(
        drafts=drafts,
        draft_tokens=draft_tokens,
        accepted=accepted,
        acceptance_rate=accepted / draft_tokens if draft_tokens else None,
        acceptance_length=1.0 + accepted / drafts if drafts else None,
        per_position=per_position,
    )


def histogram_mean_between(
    before: MetricsSnapshot, after: MetricsSnapshot, name: str
) -> float | None:
    """A histogram's mean over the observations made between two scrapes (``Δsum / Δcount``);
    ``None`` when it is not exported or nothing was observed."""
    total = _delta(before, after, f"{name}_sum")
    count = _delta(before, after, f"{name}_count")
    if total is None or not count:
        return None
    return total / count
