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
from gptoss_modal.testing._planning import Plan

__all__ = ["ChatStreamOptions", "StreamEvents", "chat_stream_events"]

LAYOUTS_PER_GENERATION = 8  # option sets kept per generation
_PerRequest = tuple[engine.Delta, int, str | None, int | None]  # a tool call's first chunk


@dataclass(frozen=True)
class ChatStreamOptions:
    """The request options that shape a chat stream's events."""

    include_usage: bool = False
    continuous_usage: bool = False
    include_reasoning: bool = True

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ChatStreamOptions:
        """Read ``stream_options`` and ``include_reasoning`` as vLLM 0.13.0 does."""
        options = body.get("stream_options")
        include_usage = options is not None and options.get("include_usage", True) is not False
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

    bodies: list[bytes | _PerRequest]
    completion: int  # tokens in the whole stream
    event_outputs: tuple[int, ...]  # per body, the engine output (batch) it comes with


def _layout(
    generation: engine.Generation,
    writer: wire.ChunkWriter,
    outputs: list[tuple[int, int]],
    include_reasoning: bool,
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
        if delta.kind == "tool_start":
            bodies.append((delta, completion, finish, stop))
        else:
            bodies.append(writer.chunk_body(writer.delta_json(delta), completion, finish, stop))
        event_outputs.append(number)
    return _Layout(bodies, completion, tuple(event_outputs))


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
    if include_usage:
        event_steps.append(event_steps[-1])
        steps_done.append(steps_done[-1])
    event_steps.append(event_steps[-1])  # [DONE]
    steps_done.append(len(plan.steps))
    times = plan.times
    return [times[step] for step in event_steps], steps_done


def chat_stream_events(
    plan: Plan,
    *,
    request_id: str,
    created: int,
    model: str,
    options: ChatStreamOptions,
    reasoning_content: bool,
    stream_interval: int,
) -> StreamEvents:
    """Every event of a plan's chat-completions stream, when it is due, the steps it completes."""
    writer = wire.ChunkWriter(
        request_id,
        created,
        model,
        reasoning_content=reasoning_content,
        continuous_usage=options.continuous_usage,
        prompt_tokens=plan.prompt_tokens,
    )
    outputs = engine.batch_outputs([s.tokens for s in plan.steps], stream_interval)
    sizes = tuple(n for _, n in outputs)
    key = ("chat.completion.chunk", sizes, options, plan.prompt_tokens)
    cache = plan.generation.cache
    layout = cache.get(key)
    if layout is None:
        layout = _layout(plan.generation, writer, outputs, options.include_reasoning)
        if len(cache) < LAYOUTS_PER_GENERATION:
            cache[key] = layout
    head = writer.head
    events = [writer.role()]
    for part in layout.bodies:
        if isinstance(part, bytes):
            events.append(head + part)
        else:  # a tool call's first delta carries an id made per request
            delta, completion, finish, stop = part
            events.append(writer.chunk(writer.delta_json(delta), completion, finish, stop))
    if options.include_usage:
        events.append(writer.usage(layout.completion))
    events.append(wire.DONE)
    times, steps_done = _schedule(plan, outputs, layout, options.include_usage)
    return StreamEvents(events, times, steps_done)
