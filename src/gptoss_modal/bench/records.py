"""One record per measured request: what was sent, what came back and when, or how it failed.

Records are built after a level from the client's :class:`ChatResult` (so a level's CPU goes to
receiving), with each chunk's arrival, running token count and flag bits; failures keep a
short stable kind (:func:`error_kind`) and are never dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

from gptoss_modal._exceptions import (
    ChunkParseError,
    ConnectError,
    ConnectTimeout,
    GptossModalError,
    HTTPStatusError,
    IncompleteStreamError,
    StallTimeout,
    StreamError,
    TimeoutException,
    TransportError,
    UpstreamError,
)
from gptoss_modal.bench.schema import ChunksDoc, RequestDoc
from gptoss_modal.bench.stats import (
    RequestMetrics,
    StreamTrace,
    request_metrics,
)
from gptoss_modal.stream.accumulator import ChatResult

__all__ = ["RequestRecord", "error_kind", "record_request"]

_MS: Final = 1000.0
# Failure classes by their kind, most specific first (a ConnectTimeout is also a TimeoutException).
_KINDS: Final[tuple[tuple[type[BaseException], str], ...]] = (
    (ConnectTimeout, "connect_timeout"),
    (StallTimeout, "stall_timeout"),
    (TimeoutException, "timeout"),
    (ConnectError, "connect"),
    (IncompleteStreamError, "incomplete_stream"),
    (ChunkParseError, "malformed_chunk"),
    (StreamError, "stream"),
    (TransportError, "transport"),
)


def error_kind(exc: BaseException) -> str:
    """A short, stable name for what made a request fail (the key of the errors table)."""
    if isinstance(exc, HTTPStatusError):  # AuthenticationError included: http_401
        return f"http_{exc.status}"
    if isinstance(exc, UpstreamError):
        return f"upstream_{exc.code}" if exc.code is not None else "upstream"
    for cls, name in _KINDS:
        if isinstance(exc, cls):
            return name
    if isinstance(exc, GptossModalError):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    return f"unexpected_{type(exc).__name__}"


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * _MS, 4)


@dataclass
class RequestRecord:
    """One measured request: what was sent, what came back and when, or how it failed.

    ``sent`` is the client clock when the request was sent; ``chunk_times_s`` are arrivals
    relative to it; ``chunk_tokens`` the running completion tokens on each chunk (continuous
    usage); ``chunk_flags`` the :mod:`gptoss_modal.bench.stats` chunk bits. ``metrics`` is set for
    successful requests (and for failed ones that got far enough to have some).
    """

    level: str
    index: int
    ok: bool
    sent: float
    error_kind: str | None = None
    error: str | None = None
    queue_s: float | None = None
    response_s: float | None = None
    failed_after_s: float | None = None
    response_id: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    metrics: RequestMetrics | None = None
    chunk_times_s: list[float] = field(default_factory=list)
    chunk_tokens: list[int | None] = field(default_factory=list)
    chunk_flags: list[int] = field(default_factory=list)

    def to_doc(self) -> RequestDoc:
        """The record as written to the JSON file (times in milliseconds)."""
        m = self.metrics
        return RequestDoc(
            level=self.level,
            index=self.index,
            ok=self.ok,
            error_kind=self.error_kind,
            error=self.error,
            response_id=self.response_id,
            finish_reason=self.finish_reason,
            prompt_tokens=self.prompt_tokens,
            output_tokens=m.output_tokens if m else None,
            tokens_from_usage=m.tokens_from_usage if m else None,
            queue_ms=_ms(self.queue_s),
            response_ms=_ms(self.response_s),
            ttft_chunk_ms=_ms(m.ttft_chunk_s) if m else None,
            ttft_ms=_ms(m.ttft_s) if m else None,
            ttft_content_ms=_ms(m.ttft_content_s) if m else None,
            tpot_ms=_ms(m.tpot_s) if m else None,
            e2e_ms=_ms(m.e2e_s) if m else None,
            failed_after_ms=_ms(self.failed_after_s),
            itl_per_token=m.itl_per_token if m else None,
            chunks=ChunksDoc(
                t_ms=[round(t * _MS, 4) for t in self.chunk_times_s],
                tokens=self.chunk_tokens,
                flags=self.chunk_flags,
            ),
        )


def _trace(result: ChatResult) -> StreamTrace:
    chunks = result.chunks
    # The last usage (the usage chunk once the stream is done), read from the end rather than
    # by folding every chunk into a message.
    usage = next((c.usage for c in reversed(chunks) if c.usage is not None), None)
    return StreamTrace(
        sent=result.started,
        arrivals=[c.arrival for c in chunks],
        usage_tokens=[u.completion_tokens if (u := c.usage) is not None else None for c in chunks],
        flags=[c.flags for c in chunks],  # the stream layer's one definition
        completion_tokens=usage.completion_tokens if usage is not None and result.done else None,
        prompt_tokens=usage.prompt_tokens if usage is not None else None,
    )


def _outcome(
    result: ChatResult, error: BaseException | None, metrics: RequestMetrics | None
) -> tuple[bool, str | None, str | None]:
    """Whether the request succeeded, and if not its kind and message."""
    if error is not None:
        return False, error_kind(error), str(error)
    if not result.done:  # pragma: no cover - collect() returns only at [DONE]
        return False, "incomplete_stream", "the stream ended without data: [DONE]"
    if metrics is None or metrics.output_tokens <= 0:
        return False, "no_output", "the stream finished without generating a token"
    return True, None, None


def record_request(
    level: str,
    index: int,
    result: ChatResult,
    error: BaseException | None,
    *,
    queue_s: float | None,
    failed_at: float | None,
) -> RequestRecord:
    """The record of request ``index`` of the level labelled ``level``, from what it received."""
    sent = result.started
    chunks = result.chunks
    trace = _trace(result)
    metrics = request_metrics(trace) if chunks else None
    ok, kind, message = _outcome(result, error, metrics)
    finishing = next((c for c in reversed(chunks) if c.choices), None)
    return RequestRecord(
        level=level,
        index=index,
        ok=ok,
        sent=sent,
        error_kind=kind,
        error=message,
        queue_s=queue_s,
        response_s=None if result.response_at is None else result.response_at - sent,
        failed_after_s=None if failed_at is None or not sent else failed_at - sent,
        response_id=chunks[0].id if chunks and chunks[0].id else None,
        finish_reason=finishing.choices[0].finish_reason if finishing is not None else None,
        prompt_tokens=trace.prompt_tokens,
        metrics=metrics,
        chunk_times_s=[a - sent for a in trace.arrivals],
        chunk_tokens=list(trace.usage_tokens),
        chunk_flags=list(trace.flags),
    )
