"""An agentic level's own numbers, pure: records in, per-turn rows, cache share and validity out.

Per turn number (over every conversation of the level): requests, mean prompt tokens (growing
turn by turn as the history does), mean cached prompt tokens where the server reported them,
the cached share, and p50 TTFT, TPOT and end-to-end latency of the successful requests. Over
the level: the prefix-cache hit share (cached / prompt tokens of the requests that reported
cached tokens) and the tool-call validity tally with its sampling error.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Sequence
from typing import Final

from gptoss_modal.bench.records import RequestRecord
from gptoss_modal.bench.schema import CacheDoc, ToolCallsDoc, TurnDoc
from gptoss_modal.bench.stats import percentile
from gptoss_modal.bench.tool_validity import ValidityTally

__all__ = ["cache_doc", "tool_calls_doc", "turn_docs"]

_MS: Final = 1000.0


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None


def _p50_ms(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return percentile(present, 50.0) * _MS if present else None


def _share(cached: int, prompt: int) -> float | None:
    return cached / prompt if prompt > 0 else None


def _turn(turn: int, records: Sequence[RequestRecord]) -> TurnDoc:
    prompts = [r.prompt_tokens for r in records if r.prompt_tokens is not None]
    reported = [r for r in records if r.cached_tokens is not None and r.prompt_tokens]
    cached = [float(r.cached_tokens or 0) for r in reported]
    ok = [r.metrics for r in records if r.ok and r.metrics is not None]
    return TurnDoc(
        turn=turn,
        requests=len(records),
        completed=len(ok),
        prompt_tokens_mean=_mean([float(p) for p in prompts]),
        cached_tokens_mean=_mean(cached),
        cache_hit_share=_share(
            sum(r.cached_tokens or 0 for r in reported), sum(r.prompt_tokens or 0 for r in reported)
        ),
        ttft_p50_ms=_p50_ms([m.ttft_s for m in ok]),
        tpot_p50_ms=_p50_ms([m.tpot_s for m in ok]),
        e2e_p50_ms=_p50_ms([m.e2e_s for m in ok]),
    )


def turn_docs(records: Sequence[RequestRecord]) -> list[TurnDoc]:
    """One row per turn number, in order; empty for a level without turns (single-turn)."""
    by_turn: dict[int, list[RequestRecord]] = collections.defaultdict(list)
    for record in records:
        if record.turn is not None:
            by_turn[record.turn].append(record)
    return [_turn(turn, by_turn[turn]) for turn in sorted(by_turn)]


def cache_doc(records: Sequence[RequestRecord]) -> CacheDoc | None:
    """The level's prefix-cache hit share; ``None`` when no request reported cached tokens."""
    reported = [r for r in records if r.cached_tokens is not None and r.prompt_tokens]
    if not reported:
        return None
    prompt = sum(r.prompt_tokens or 0 for r in reported)
    cached = sum(r.cached_tokens or 0 for r in reported)
    return CacheDoc(
        requests=len(reported),
        prompt_tokens=prompt,
        cached_tokens=cached,
        hit_share=_share(cached, prompt),
    )


def tool_calls_doc(records: Sequence[RequestRecord]) -> ToolCallsDoc | None:
    """The level's tool-call validity; ``None`` when no request offered tools."""
    tally = ValidityTally()
    offered = False
    for record in records:
        if record.turn is None and not record.tool_calls and not record.lost_calls:
            continue
        offered = True
        tally.extend(record.tool_calls, record.lost_calls)
    if not offered:
        return None
    interval = tally.interval
    return ToolCallsDoc(
        calls=tally.calls,
        invalid=tally.invalid,
        invalid_rate=tally.rate,
        standard_error=tally.standard_error,
        wilson_low=interval[0] if interval else None,
        wilson_high=interval[1] if interval else None,
        problems=dict(sorted(tally.problems.items())),
    )
