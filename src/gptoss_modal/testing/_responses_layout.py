"""A plan's engine outputs laid out as a Responses stream, per vLLM version: every event's
bytes, when it is due and the steps done once it is sent; and the final response object.

Pure: the caller passes ids, the clock's ``created`` and the request's echo. The walk is
harmony's, token by token (``_engine.HarmonyState``): a token inside a message is a delta of
its channel and recipient, a stop token completes the message. Each version's serving code
turns those into events differently; both transcriptions are below:

- 0.33.0 (``responses/streaming_events.py``, ``StreamingState``): ``rs_``/``msg_``/``fc_``
  item ids, ``response.content_part.*`` for reasoning too, a message's done events when it
  completes, then the next item gets the next ``output_index``; the terminal event is
  ``response.incomplete`` when ``max_output_tokens`` cut the output.
- 0.13.0 (``serving_responses.py``): reasoning items get ``msg_`` ids and vLLM's own
  ``response.reasoning_part.*`` events; ``output_index`` is raised *before* the previous
  item's done events (so they carry the next index) and the content index is never reset; a
  function call's item opens on its ``<|message|>`` token (its branch is the only one not
  gated on a content delta) with the previous item's id as its own, and its ``.done`` item has
  ``"id": null`` and an ``item_id``; the stream always ends ``response.completed``.

The mock treats every token as its own engine output for 0.13.0 (exact with
``stream_interval`` 1 and no speculative decoding, which is how 0.13.0 streams harmony).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing import _harmony_v033 as harmony033
from gptoss_modal.testing import _responses_wire as rw
from gptoss_modal.testing._layout import StreamEvents
from gptoss_modal.testing._planning import Plan
from gptoss_modal.testing._wire import random_id

__all__ = ["ResponseLayout", "final_output", "layout_stream", "reasoning_tokens", "status_of"]

_Event = dict[str, Any]
_Message = tuple[str | None, str | None, str]  # channel, recipient, text
# Fields the openai models declare after the sorted ones (added in later releases).
_DECLARED_LATE = {"response.function_call_arguments.done": ("name",)}


def _ev(kind: str, **fields: Any) -> _Event:
    """An event dict with the keys in the openai model's order (sorted, as its fields are
    declared alphabetically), ``sequence_number`` numbered later."""
    fields["sequence_number"] = -1
    fields["type"] = kind
    late = _DECLARED_LATE.get(kind, ())
    event = {k: fields[k] for k in sorted(fields) if k not in late}
    event.update((k, fields[k]) for k in late)
    return event


def _function_call_done(
    arguments: str, name: str, item_id: str | None, out: int, item: _Event
) -> list[_Event]:
    """A function call's two closing events, the same in both versions' layouts."""
    return [
        _ev(
            "response.function_call_arguments.done",
            arguments=arguments,
            name=name,
            item_id=item_id,
            output_index=out,
        ),
        _ev("response.output_item.done", output_index=out, item=item),
    ]


def _function_name(recipient: str | None) -> str | None:
    if recipient and recipient.startswith("functions."):
        return recipient[len("functions.") :]
    return None


@dataclass
class _Walk:
    """Per engine output, its segments: ("open" | "delta" | "done", channel, recipient, text)."""

    outputs: list[list[tuple[str, str | None, str | None, str]]] = field(default_factory=list)
    completed: list[_Message] = field(default_factory=list)


def _walk(generation: engine.Generation, sizes: list[int], *, flush: bool = False) -> _Walk:
    parser = engine.HarmonyState(generation.text_of)
    walk = _Walk()
    pos = 0
    text = ""
    for size in sizes:
        segments: list[tuple[str, str | None, str | None, str]] = []
        for token in generation.tokens[pos : pos + size]:
            was_content = parser.state == "content"
            parser.process(token)
            if was_content and parser.state != "content":
                message = (parser.channel, parser.recipient, text)
                walk.completed.append(message)
                segments.append(("done", *message))
                text = ""
            elif not was_content and parser.state == "content":  # <|message|>: a message opens
                segments.append(("open", parser.channel, parser.recipient, ""))
            elif was_content and parser.last_delta:
                text += parser.last_delta
                segments.append(("delta", parser.channel, parser.recipient, parser.last_delta))
        pos += size
        walk.outputs.append(segments)
    if flush and parser.state == "content" and walk.outputs:
        # 0.33.0's HarmonyParser.flush at the finished output: the cut message completes
        # there, so its done events are sent (it is not in ``completed``: it was cut)
        walk.outputs[-1].append(("done", parser.channel, parser.recipient, text))
    return walk


class _State033:
    """0.33.0's ``StreamingState`` and its emitters for the items gpt-oss writes."""

    def __init__(self) -> None:
        self.output_index = 0
        self.content_index = -1
        self.item_id = ""
        self.call_id = ""
        self.added = False
        self.first_call_delta = False
        self.done_items: list[list[_Event]] = []  # per completed message, its done items

    def delta(self, channel: str | None, recipient: str | None, text: str) -> list[_Event]:
        name = _function_name(recipient)
        if recipient is None and channel in ("final", "commentary"):
            return [
                *self._open_part("msg", self._message_added),
                _ev("response.output_text.delta", **self._where(), delta=text, logprobs=[]),
            ]
        if recipient is None and channel == "analysis":
            return [
                *self._open_part("rs", self._reasoning_added),
                _ev("response.reasoning_text.delta", **self._where(), delta=text),
            ]
        if name is not None:
            events = []
            if not self.first_call_delta:
                self.first_call_delta = True
                self.item_id, self.call_id = rw.new_id("fc"), rw.new_id("call")
                item = rw.function_item(
                    "0.33.0",
                    item_id=self.item_id,
                    call_id=self.call_id,
                    name=name,
                    arguments="",
                    status="in_progress",
                )
                events.append(self._added(item))
            events.append(
                _ev(
                    "response.function_call_arguments.delta",
                    item_id=self.item_id,
                    output_index=self.output_index,
                    delta=text,
                )
            )
            return events
        return []  # built-in and MCP recipients: the mock's engine writes none

    def _where(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "output_index": self.output_index,
            "content_index": self.content_index,
        }

    def open(self, channel: str | None, recipient: str | None, text: str) -> list[_Event]:
        """A message's ``<|message|>`` token: no delta, so 0.33.0 sends nothing."""
        return []

    def _added(self, item: _Event) -> _Event:
        return _ev("response.output_item.added", output_index=self.output_index, item=item)

    def _message_added(self) -> list[_Event]:
        empty = rw.output_text("", logprobs=[])
        return [
            self._added(rw.message_item(self.item_id, [], "in_progress")),
            _ev("response.content_part.added", **self._where(), part=empty),
        ]

    def _reasoning_added(self) -> list[_Event]:
        part = {"text": "", "type": "reasoning_text"}
        return [
            self._added(rw.reasoning_item(self.item_id, None, "in_progress")),
            _ev("response.content_part.added", **self._where(), part=part),
        ]

    def _open_part(self, prefix: str, opening: Callable[[], list[_Event]]) -> list[_Event]:
        if self.added:
            return []
        self.added = True
        self.item_id = rw.new_id(prefix)
        self.content_index += 1
        return opening()

    def done(self, channel: str | None, recipient: str | None, text: str) -> list[_Event]:
        events = (
            self._done_events(channel, recipient, text)
            if self.added or self.first_call_delta
            else []
        )
        self.done_items.append(
            [e["item"] for e in events if e["type"] == "response.output_item.done"]
        )
        self.output_index += 1  # reset_for_new_item
        self.content_index = -1
        self.added = self.first_call_delta = False
        self.call_id = ""
        return events

    def _done_events(self, channel: str | None, recipient: str | None, text: str) -> list[_Event]:
        name = _function_name(recipient)
        out = self.output_index
        if name is not None:
            item = rw.function_item(
                "0.33.0",
                item_id=self.item_id,
                call_id=self.call_id,
                name=name,
                arguments=text,
                status="completed",
                extra={"output_index": out, "sequence_number": -1},
            )
            return _function_call_done(text, name, self.item_id, out, item)
        if recipient is not None:
            return []
        if channel == "analysis":
            part = {"text": text, "type": "reasoning_text"}
            return [
                _ev("response.reasoning_text.done", **self._where(), text=text),
                _ev("response.content_part.done", **self._where(), part=part),
                _ev(
                    "response.output_item.done",
                    output_index=out,
                    item=rw.reasoning_item(self.item_id, text, "completed"),
                ),
            ]
        part = rw.output_text(text, logprobs=None)
        return [
            _ev("response.output_text.done", **self._where(), text=text, logprobs=[]),
            _ev("response.content_part.done", **self._where(), part=part),
            _ev(
                "response.output_item.done",
                output_index=out,
                item=rw.message_item(self.item_id, [part], "completed"),
            ),
        ]


class _State013:
    """0.13.0's ``_process_harmony_streaming_events``, its quirks kept (see the module)."""

    def __init__(self) -> None:
        self.output_index = 0
        self.content_index = -1
        self.item_id = ""
        self.added = False
        self.first_call_delta = False

    def _where(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "output_index": self.output_index,
            "content_index": self.content_index,
        }

    def delta(self, channel: str | None, recipient: str | None, text: str) -> list[_Event]:
        if recipient is None and channel == "final":
            events = []
            if not self.added:
                self.added, self.item_id = True, rw.new_id("msg")
                item = rw.message_item(self.item_id, [], "in_progress")
                events.append(
                    _ev("response.output_item.added", output_index=self.output_index, item=item)
                )
                self.content_index += 1
                empty = rw.output_text("", logprobs=[])
                events.append(_ev("response.content_part.added", **self._where(), part=empty))
            delta = _ev("response.output_text.delta", **self._where(), delta=text, logprobs=[])
            return [*events, delta]
        if recipient is None and channel == "analysis":
            events = []
            if not self.added:
                self.added, self.item_id = True, rw.new_id("msg")
                item = rw.reasoning_item(self.item_id, None, "in_progress")
                events.append(
                    _ev("response.output_item.added", output_index=self.output_index, item=item)
                )
                self.content_index += 1
                part = {"text": "", "type": "reasoning_text"}
                events.append(_ev("response.reasoning_part.added", **self._where(), part=part))
            return [*events, _ev("response.reasoning_text.delta", **self._where(), delta=text)]
        if _function_name(recipient) is None or channel != "commentary":
            return []
        return [
            _ev(
                "response.function_call_arguments.delta",
                item_id=self.item_id,
                delta=text,
                output_index=self.output_index,
            )
        ]

    def open(self, channel: str | None, recipient: str | None, text: str) -> list[_Event]:
        """A message's ``<|message|>`` token: 0.13.0's function-call branch opens the item."""
        name = _function_name(recipient)
        if name is None or channel != "commentary" or self.first_call_delta:
            return []
        self.first_call_delta = True
        item = rw.function_item(
            "0.13.0",
            item_id=self.item_id,
            call_id=rw.new_id("call"),
            name=name,
            arguments="",
            status="in_progress",
        )
        self.item_id = rw.new_id("fc")
        return [_ev("response.output_item.added", output_index=self.output_index, item=item)]

    def done(self, channel: str | None, recipient: str | None, text: str) -> list[_Event]:
        self.output_index += 1  # is_expecting_start: raised before the done events
        self.added = self.first_call_delta = False
        out = self.output_index
        name = _function_name(recipient)
        if name is not None:
            extra = {"item_id": self.item_id, "output_index": out, "sequence_number": -1}
            item = rw.function_item(
                "0.13.0",
                item_id=None,
                call_id=rw.new_id("fc"),
                name=name,
                arguments=text,
                status="completed",
                extra=extra,
            )
            return _function_call_done(text, name, self.item_id, out, item)
        if recipient is not None:
            return []
        if channel == "analysis":
            part = {"text": text, "type": "reasoning_text"}
            return [
                _ev("response.reasoning_text.done", **self._where(), text=text),
                _ev("response.reasoning_part.done", **self._where(), part=part),
                _ev(
                    "response.output_item.done",
                    output_index=out,
                    item=rw.reasoning_item(self.item_id, text, "completed"),
                ),
            ]
        if channel == "final":
            part = rw.output_text(text, logprobs=None)
            return [
                _ev("response.output_text.done", **self._where(), text=text, logprobs=[]),
                _ev("response.content_part.done", **self._where(), part=part),
                _ev(
                    "response.output_item.done",
                    output_index=out,
                    item=rw.message_item(self.item_id, [part], "completed"),
                ),
            ]
        return []


# --- the final response's output --------------------------------------------------------------


def _item_of(version: str, message: _Message, incomplete: bool) -> list[_Event]:
    """``harmony_to_response_output`` (0.33.0) / ``parse_output_message`` (0.13.0)."""
    channel, recipient, text = message
    name = _function_name(recipient)
    if name is not None:
        number = random_id()
        done = "completed" if version != "0.13.0" else None
        return [
            rw.function_item(
                version,
                item_id=f"fc_{number}",
                call_id=f"call_{number}",
                name=name,
                arguments=text,
                status="incomplete" if incomplete else done,
            )
        ]
    if recipient is not None:
        return []
    if channel == "analysis" or (channel == "commentary" and version == "0.13.0"):
        return [rw.reasoning_item(rw.new_id("rs"), text, None)]
    status = "incomplete" if incomplete else "completed"
    return [rw.message_item(rw.new_id("msg"), [rw.output_text(text, logprobs=None)], status)]


def _reuse_ids(items: list[_Event], streamed: list[_Event]) -> None:
    """``reuse_streamed_item_ids``: an item takes the id of the streamed item of its type."""
    remaining = list(streamed)
    for item in items:
        for i, old in enumerate(remaining):
            if old["type"] != item["type"]:
                continue
            item["id"] = old["id"]
            if item["type"] == "function_call":
                item["call_id"] = old["call_id"]
            del remaining[i]
            break


def final_output(
    generation: engine.Generation, version: str, streamed: list[list[_Event]] | None = None
) -> list[_Event]:
    """The final response's output items: every message, the cut one ``incomplete``."""
    walk = _walk(generation, [len(generation.tokens)])
    completed = len(walk.completed)
    if version == "0.13.0":
        messages: list[_Message] = list(walk.completed)
        if len(harmony033._messages(generation)) > completed:  # the cut message (if any text)
            partial = harmony033._messages(generation)[completed]
            if partial[2] and not (partial[1] or "").startswith("browser."):
                messages.append(partial)
    else:
        messages = harmony033._messages(generation)
    output: list[_Event] = []
    for number, message in enumerate(messages):
        cut = number >= completed
        if version == "0.13.0" and cut:
            items = _item_of(version, message, incomplete=message[0] == "final")
            if items and items[0]["type"] == "function_call":
                items[0]["status"] = "in_progress"
        else:
            items = _item_of(version, message, incomplete=cut)
        if streamed is not None and number < len(streamed):
            _reuse_ids(items, streamed[number])
        output.extend(items)
    return output


def reasoning_tokens(generation: engine.Generation, version: str) -> int:
    """The usage's reasoning tokens. 0.33.0 (``HarmonyParser._is_reasoning_token``): the
    non-special tokens of analysis, or commentary to a recipient. 0.13.0
    (``HarmonyContext._update_num_reasoning_tokens``): every token after which the parser is
    inside an analysis or commentary message, so the ``<|message|>`` that opens it counts too
    (and commentary without a recipient)."""
    if version != "0.13.0":
        counted = harmony033.plan_stream(generation, [len(generation.tokens)]).reasoning_tokens
        return counted[-1] if counted else 0
    parser = engine.HarmonyState(generation.text_of)
    count = 0
    for token in generation.tokens:
        parser.process(token)
        count += parser.state == "content" and parser.channel in ("analysis", "commentary")
    return count


def status_of(
    generation: engine.Generation, output: list[_Event], version: str, stream: bool
) -> str:
    """The response status: ``incomplete`` when cut (or empty); 0.13.0's stream never says so
    (its streaming context keeps no finish reason)."""
    if version == "0.13.0" and stream:
        return "completed"
    if not output or generation.finish_reason == "length":
        return "incomplete"
    return "completed"


# --- the stream -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ResponseLayout:
    """A stream's events (bytes, due times, steps done) and the final response it ends with."""

    stream: StreamEvents
    final: dict[str, Any]


def layout_stream(
    plan: Plan,
    *,
    version: str,
    echo: rw.Echo,
    created: int,
    usage: rw.Usage,
    stream_interval: int,
) -> ResponseLayout:
    """Every event of a plan's Responses stream, numbered from 0, with when each is due: the
    created and in-progress events at once (vLLM sends them before generating), the rest with
    the engine output they come from, the terminal event with the last."""
    gen = plan.generation
    outputs = engine.batch_outputs([s.tokens for s in plan.steps], stream_interval)
    if version == "0.13.0":  # one output per token, each with its step
        outputs = [(step, 1) for step, size in outputs for _ in range(size)]
    walk = _walk(gen, [size for _, size in outputs], flush=version != "0.13.0")
    state: _State013 | _State033 = _State013() if version == "0.13.0" else _State033()
    start = rw.response_object(
        echo, version, created=created, status="in_progress", output=[], usage=None
    )
    events = [_ev("response.created", response=start), _ev("response.in_progress", response=start)]
    times, steps_done = [0.0, 0.0], [0, 0]
    for (step, _), segments in zip(outputs, walk.outputs, strict=True):
        for kind, channel, recipient, text in segments:
            made = getattr(state, kind)(channel, recipient, text)
            events += made
            times += [plan.times[step]] * len(made)
            steps_done += [step + 1] * len(made)
    streamed = state.done_items if isinstance(state, _State033) else None
    output = final_output(gen, version, streamed)
    status = status_of(gen, output, version, stream=True)
    final = rw.response_object(
        echo, version, created=created, status=status, output=output, usage=usage
    )
    terminal = "response.incomplete" if status == "incomplete" else "response.completed"
    events.append(_ev(terminal, response=final))
    times.append(plan.times[-1] if plan.times else 0.0)
    steps_done.append(len(plan.steps))
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return ResponseLayout(
        StreamEvents([rw.event_bytes(e) for e in events], times, steps_done), final
    )
