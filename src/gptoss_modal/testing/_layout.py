"""A plan's engine steps laid out as a chat-completions stream: every event's bytes, when it
is due and how many engine steps it completes.

Pure: the caller passes the clock's ``created``. Repeated requests (a benchmark's) share the
work: every event's JSON after its head (id, created, model) depends only on the generation,
how its tokens are batched and the request's stream options, so it is built once per
generation and options and kept on the generation; only the heads and a tool call's id are
made per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing import _wire_v033 as wire033
from gptoss_modal.testing._harmony_v033 import Delta033, plan_stream
from gptoss_modal.testing._planning import Plan
from gptoss_modal.testing._prefix_cache import prompt_tokens_details, stream_details_json

__all__ = ["ChatStreamOptions", "StreamEvents", "StreamSettings", "chat_stream_events"]

LAYOUTS_PER_GENERATION = 8  # option sets kept per generation
_PerRequest = tuple[engine.Delta, int, str | None, int | None]  # a tool call's first chunk
_PerRequest033 = tuple[Delta033, int, int, str | None, int | None]  # the same, in 0.33.0
# 0.13.0's reply when max_tokens ends the stream inside a tool call's arguments: its
# unstreamed-arguments check indexes the tool parser's empty list (vllm#37937).
TOOL_LENGTH_ERROR = wire.streaming_error("list index out of range", "BadRequestError", 400)


@dataclass(frozen=True)
class ChatStreamOptions:
    """The request options that shape a chat stream's events."""

    include_usage: bool = False
    continuous_usage: bool = False
    include_reasoning: bool = True

    @classmethod
    def from_body(cls, body: dict[str, Any], vllm_version: str = "0.13.0") -> ChatStreamOptions:
        """Read ``stream_options`` and ``include_reasoning`` as that vLLM version does
        (``include_usage`` defaults to true in 0.13.0, to false in 0.33.0)."""
        options = body.get("stream_options")
        default = vllm_version == "0.13.0"
        include_usage = options is not None and bool(options.get("include_usage", default))
        continuous = include_usage and bool((options or {}).get("continuous_usage_stats"))
        hide = body.get("include_reasoning", True) is False
        return cls(include_usage, continuous, not hide)


@dataclass(frozen=True)
class StreamEvents:
    """A stream's events, when each is due (s after arrival) and the steps done once sent."""

    events: list[bytes]
    times: list[float]
    steps_done: list[int]


@dataclass(frozen=True)
class _Layout:
    """A stream's events without their heads, kept per generation and request options."""

    bodies: list[bytes | _PerRequest] | list[bytes | _PerRequest033]
    completion: int  # tokens in the whole stream
    event_outputs: tuple[int, ...]  # per body, the engine output (batch) it comes with
    reasoning: int = 0  # reasoning tokens in the whole stream (0.33.0's usage details)
    error: bool = False  # ends in an in-stream error instead of a finish (no usage chunk)


def _layout(
    generation: engine.Generation,
    writer: wire.ChunkWriter,
    outputs: list[tuple[int, int]],
    include_reasoning: bool,
    tool_parser: bool,
) -> _Layout:
    deltas = engine.harmony_deltas(
        generation, tuple(n for _, n in outputs), include_reasoning=include_reasoning
    )
    bodies: list[bytes | _PerRequest] = []
    event_outputs: list[int] = []
    completion = 0
    tools_streamed = False
    last = len(outputs) - 1
    for number, ((_, size), delta) in enumerate(zip(outputs, deltas, strict=True)):
        completion += size
        finishing = number == last
        if delta.kind is None and not finishing:
            continue
        tools_streamed = tools_streamed or delta.kind in ("tool_start", "tool_args")
        finish = None
        if finishing:
            finish = "tool_calls" if tools_streamed else generation.finish_reason
        stop = generation.stop_reason if finishing else None
        if finishing and tool_parser and delta.kind in ("tool_start", "tool_args"):
            return _Layout(bodies, completion, tuple(event_outputs), error=True)
        if delta.kind == "tool_start":
            bodies.append((delta, completion, finish, stop))
        else:
            bodies.append(writer.chunk_body(writer.delta_json(delta), completion, finish, stop))
        event_outputs.append(number)
    return _Layout(bodies, completion, tuple(event_outputs))


def _layout_033(
    generation: engine.Generation,
    writer: wire033.ChunkWriter033,
    outputs: list[tuple[int, int]],
    options: ChatStreamOptions,
    tool_parser: bool,
    named_tool: bool,
) -> _Layout:
    """0.33.0's chunks: one per output with a delta, the last one carrying the finish."""
    sizes = [n for _, n in outputs]
    stream = plan_stream(
        generation, sizes, include_reasoning=options.include_reasoning, tool_parser=tool_parser
    )
    bodies: list[bytes | _PerRequest033] = []
    event_outputs: list[int] = []
    completion = 0
    last = len(outputs) - 1
    finish = generation.finish_reason
    if finish == "stop" and stream.tools_streamed and not named_tool:
        finish = "tool_calls"  # resolve_finish_reason: a length cut stays "length"
    for number, (size, delta) in enumerate(zip(sizes, stream.deltas, strict=True)):
        completion += size
        finishing = number == last
        if delta is None and not finishing:
            continue
        reason = finish if finishing else None
        stop = generation.stop_reason if finishing else None
        count = stream.reasoning_tokens[number]
        if delta is not None and delta.tool is not None and delta.tool[1] is not None:
            bodies.append((delta, completion, count, reason, stop))
        else:
            delta_json = writer.delta_json(delta)
            bodies.append(writer.chunk_body(delta_json, completion, count, reason, stop))
        event_outputs.append(number)
    total = stream.reasoning_tokens[-1] if stream.reasoning_tokens else 0
    return _Layout(bodies, completion, tuple(event_outputs), reasoning=total)


def _schedule(
    plan: Plan, outputs: list[tuple[int, int]], layout: _Layout, include_usage: bool
) -> tuple[list[float], list[int]]:
    """When each event is due and the steps done once it is sent.

    The steps differ between requests with the same layout (speculative decoding draws
    acceptances server-wide; different step splits can batch alike): mapped per request.
    """
    output_steps = [step for step, _ in outputs]
    event_steps = [output_steps[0]]  # the role chunk goes with the first output
    event_steps += [output_steps[i] for i in layout.event_outputs]
    steps_done = [0] + [step + 1 for step in event_steps[1:]]
    if layout.error:  # the error event comes with the last output
        event_steps.append(output_steps[-1])
        steps_done.append(len(plan.steps))
    elif include_usage:
        event_steps.append(event_steps[-1])
        steps_done.append(steps_done[-1])
    event_steps.append(event_steps[-1])  # [DONE]
    steps_done.append(len(plan.steps))
    times = plan.times
    return [times[step] for step in event_steps], steps_done


@dataclass(frozen=True)
class StreamSettings:
    """What the server's settings do to a chat stream (per server, not per request)."""

    vllm_version: str = "0.13.0"
    stream_interval: int = 1
    reasoning_content: bool = True  # 0.13.0's deprecated duplicate of each reasoning delta
    tool_parser: bool = True  # --tool-call-parser openai --enable-auto-tool-choice
    fingerprint: str = ""  # 0.33.0's system_fingerprint
    prompt_tokens_details: bool = False  # --enable-prompt-tokens-details: cached tokens in usage


def chat_stream_events(
    plan: Plan,
    *,
    request_id: str,
    created: int,
    model: str,
    options: ChatStreamOptions,
    settings: StreamSettings,
    named_tool: bool = False,
) -> StreamEvents:
    """Every event of a plan's chat-completions stream, when it is due, the steps it completes."""
    outputs = engine.batch_outputs([s.tokens for s in plan.steps], settings.stream_interval)
    if settings.vllm_version == "0.13.0":
        events, layout = _events_013(plan, request_id, created, model, options, settings, outputs)
    else:
        events, layout = _events_033(
            plan, request_id, created, model, options, settings, outputs, named_tool
        )
    times, steps_done = _schedule(plan, outputs, layout, options.include_usage)
    return StreamEvents(events, times, steps_done)


def _details(plan: Plan, settings: StreamSettings) -> bytes:
    """The usage chunk's ``prompt_tokens_details`` (made per request: the cache hit is)."""
    enabled = settings.prompt_tokens_details
    details = prompt_tokens_details(settings.vllm_version, plan.prompt_cache, enabled)
    return stream_details_json(details)


def _cached(plan: Plan, key: tuple[Any, ...], build: Any) -> _Layout:
    """The layout kept on the generation under ``key``, built on first use."""
    cache = plan.generation.cache
    layout: _Layout | None = cache.get(key)
    if layout is None:
        layout = build()
        if len(cache) < LAYOUTS_PER_GENERATION:
            cache[key] = layout
    return layout


def _events_013(
    plan: Plan,
    request_id: str,
    created: int,
    model: str,
    options: ChatStreamOptions,
    settings: StreamSettings,
    outputs: list[tuple[int, int]],
) -> tuple[list[bytes], _Layout]:
    writer = wire.ChunkWriter(
        request_id,
        created,
        model,
        reasoning_content=settings.reasoning_content,
        continuous_usage=options.continuous_usage,
        prompt_tokens=plan.prompt_tokens,
    )
    writer.prompt_details = _details(plan, settings)
    sizes = tuple(n for _, n in outputs)
    key = ("0.13.0", sizes, options, plan.prompt_tokens, settings)
    layout = _cached(
        plan,
        key,
        lambda: _layout(
            plan.generation, writer, outputs, options.include_reasoning, settings.tool_parser
        ),
    )
    head = writer.head
    events = [writer.role()]
    for part in layout.bodies:
        if isinstance(part, bytes):
            events.append(head + part)
        else:  # a tool call's first delta carries an id made per request
            delta, completion, finish, stop = part  # type: ignore[misc]
            events.append(writer.chunk(writer.delta_json(delta), completion, finish, stop))
    if layout.error:
        events.append(TOOL_LENGTH_ERROR)
    elif options.include_usage:
        events.append(writer.usage(layout.completion))
    events.append(wire.DONE)
    return events, layout


def _events_033(
    plan: Plan,
    request_id: str,
    created: int,
    model: str,
    options: ChatStreamOptions,
    settings: StreamSettings,
    outputs: list[tuple[int, int]],
    named_tool: bool,
) -> tuple[list[bytes], _Layout]:
    writer = wire033.ChunkWriter033(
        request_id,
        created,
        model,
        fingerprint=settings.fingerprint,
        include_usage=options.include_usage,
        continuous_usage=options.continuous_usage,
        prompt_tokens=plan.prompt_tokens,
    )
    writer.prompt_details = _details(plan, settings)
    sizes = tuple(n for _, n in outputs)
    key = ("0.33.0", sizes, options, plan.prompt_tokens, settings, named_tool)
    layout = _cached(
        plan,
        key,
        lambda: _layout_033(
            plan.generation, writer, outputs, options, settings.tool_parser, named_tool
        ),
    )
    head = writer.head
    events = [writer.role()]
    for part in layout.bodies:
        if isinstance(part, bytes):
            events.append(head + part)
        else:  # a tool call's first delta carries an id made per request
            delta, completion, count, finish, stop = part  # type: ignore[misc]
            body = writer.chunk_body(writer.delta_json(delta), completion, count, finish, stop)
            events.append(head + body)
    if options.include_usage:
        events.append(writer.usage(layout.completion, layout.reasoning))
    events.append(wire.DONE)
    return events, layout
