"""One record per measured request: what was sent, what came back and when, or how it failed.

Records are built after a level from the client's :class:`ChatResult` or, with ``--api
responses``, :class:`ResponseResult` (so a level's CPU goes to receiving), with each chunk's
(event's) arrival, running token count and flag bits; failures keep a short stable kind
(:func:`error_kind`) and are never dropped. An agentic turn's record also has its turn,
conversation, cached prompt tokens and each tool call's verdict
(:mod:`gptoss_modal.bench.tool_validity`).

A Responses stream has no running usage and no role chunk: its events that carry output are
its "chunks with a choice", so TPOT runs from the first output delta to the last (as
:attr:`ResponseResult.decode_tokens_per_s`), ITL is per event, and ``ttft_chunk`` is the first
event (``response.created``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

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
from gptoss_modal.bench.schema import ChunksDoc, RequestDoc, ToolCallDoc
from gptoss_modal.bench.stats import (
    CHUNK_CHOICES,
    CHUNK_CONTENT,
    CHUNK_OUTPUT,
    RequestMetrics,
    StreamTrace,
    request_metrics,
)
from gptoss_modal.bench.tool_validity import HARMONY_LEAK, CallVerdict, ToolSchemas, check_call
from gptoss_modal.bench.tool_validity import has_harmony_markup as _leaks
from gptoss_modal.stream.accumulator import ChatResult
from gptoss_modal.stream.responses_accumulator import ResponseResult

if TYPE_CHECKING:
    from gptoss_modal.bench.workload import BenchRequest

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
    # Agentic turns: the turn, its conversation, cached prompt tokens (None: not reported),
    # each tool call's verdict, and the call attempts lost (error kinds, or a leak in content).
    turn: int | None = None
    conversation: str | None = None
    cached_tokens: int | None = None
    tool_calls: list[CallVerdict] = field(default_factory=list)
    lost_calls: list[str] = field(default_factory=list)

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
            turn=self.turn,
            conversation=self.conversation,
            cached_tokens=self.cached_tokens,
            tool_calls=[
                ToolCallDoc(name=v.name, problems=list(v.problems)) for v in self.tool_calls
            ],
            lost_calls=self.lost_calls,
        )


def _response_trace(result: ResponseResult) -> StreamTrace:
    usage = result.usage
    flags = [
        (CHUNK_CHOICES | CHUNK_OUTPUT | (CHUNK_CONTENT if e.has_content else 0))
        if e.has_output
        else 0
        for e in result.chunks
    ]
    return StreamTrace(
        sent=result.started,
        arrivals=[e.arrival for e in result.chunks],
        usage_tokens=[None] * len(flags),
        flags=flags,
        completion_tokens=usage.output_tokens if usage is not None and result.done else None,
        prompt_tokens=usage.input_tokens if usage is not None else None,
    )


def _trace(result: ChatResult | ResponseResult) -> StreamTrace:
    if isinstance(result, ResponseResult):
        return _response_trace(result)
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
    result: ChatResult | ResponseResult,
    error: BaseException | None,
    metrics: RequestMetrics | None,
) -> tuple[bool, str | None, str | None]:
    """Whether the request succeeded, and if not its kind and message."""
    if error is not None:
        return False, error_kind(error), str(error)
    if not result.done:  # pragma: no cover - collect() returns only at its end
        return False, "incomplete_stream", "the stream ended without its end ([DONE])"
    if metrics is None or metrics.output_tokens <= 0:
        return False, "no_output", "the stream finished without generating a token"
    return True, None, None


@dataclass(frozen=True, slots=True)
class _Reply:
    """What a reply said, from either API: its id, finish reason, content, tool calls, and
    cached prompt tokens (``None``: not reported)."""

    response_id: str | None
    finish_reason: str | None
    content: str
    calls: tuple[tuple[str, str], ...]  # (name, arguments)
    cached_tokens: int | None


def _reply(result: ChatResult | ResponseResult) -> _Reply:
    if isinstance(result, ResponseResult):
        output = result.output
        cut = output.incomplete_reason == "max_output_tokens"
        details = output.usage.input_tokens_details if output.usage is not None else None
        return _Reply(
            output.id or None,
            "length" if cut else output.status,
            output.text,
            tuple((c.name, c.arguments) for c in output.function_calls),
            details.cached_tokens if details is not None else None,
        )
    chunks = result.chunks
    finishing = next((c for c in reversed(chunks) if c.choices), None)
    message = result.message
    usage = result.usage
    return _Reply(
        chunks[0].id if chunks and chunks[0].id else None,
        finishing.choices[0].finish_reason if finishing is not None else None,
        message.content,
        tuple((c.name, c.arguments) for c in message.tool_calls),
        usage.cached_tokens if usage is not None else None,
    )


_SCHEMAS: list[tuple[object, ToolSchemas]] = []  # the last tools' validators (built once)


def _schemas(tools: object) -> ToolSchemas:
    """Validators for ``tools``, reused while the same tools object is offered (the run's)."""
    if not _SCHEMAS or _SCHEMAS[0][0] is not tools:
        _SCHEMAS[:] = [(tools, ToolSchemas(tools))]  # type: ignore[arg-type]  # a tool list
    return _SCHEMAS[0][1]


def _tool_checks(
    reply: _Reply, request: BenchRequest | None, error_kind_: str | None
) -> tuple[list[CallVerdict], list[str]]:
    """Each call's verdict, and the attempts lost on a turn that asked for a call."""
    if request is None or not request.tools:
        return [], []
    schemas = _schemas(request.tools)
    verdicts = [
        check_call(
            name, arguments, schemas, finish_reason=reply.finish_reason, content=reply.content
        )
        for name, arguments in reply.calls
    ]
    failed = error_kind_ is not None and error_kind_ != "no_output"
    if failed and verdicts:
        # The stream failed with the last call open (vLLM 0.13.0's `max_tokens` inside a call
        # ends in an error event, vllm#37937): an agent cannot trust it, whatever it parses to.
        last = verdicts[-1]
        verdicts[-1] = dataclasses.replace(last, problems=(*last.problems, str(error_kind_)))
    lost: list[str] = []
    if request.expects_call and not verdicts:
        if failed:
            lost.append(str(error_kind_))
        elif _leaks(reply.content):
            lost.append(HARMONY_LEAK)
    return verdicts, lost


def record_request(
    level: str,
    index: int,
    result: ChatResult | ResponseResult,
    error: BaseException | None,
    *,
    queue_s: float | None,
    failed_at: float | None,
    request: BenchRequest | None = None,
) -> RequestRecord:
    """The record of request ``index`` of the level labelled ``level``, from what it received
    (``request``: what it sent, for an agentic turn's tools and turn)."""
    sent = result.started
    chunks = result.chunks
    trace = _trace(result)
    metrics = request_metrics(trace) if chunks else None
    if metrics is not None and isinstance(result, ResponseResult):
        metrics = dataclasses.replace(metrics, ttft_chunk_s=result.first_chunk_s)
    ok, kind, message = _outcome(result, error, metrics)
    reply = _reply(result)
    verdicts, lost = _tool_checks(reply, request, kind)
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
        response_id=reply.response_id,
        finish_reason=reply.finish_reason,
        prompt_tokens=trace.prompt_tokens,
        metrics=metrics,
        chunk_times_s=[a - sent for a in trace.arrivals],
        chunk_tokens=list(trace.usage_tokens),
        chunk_flags=list(trace.flags),
        turn=request.turn if request is not None else None,
        conversation=request.conversation if request is not None else None,
        cached_tokens=reply.cached_tokens,
        tool_calls=verdicts,
        lost_calls=lost,
    )
