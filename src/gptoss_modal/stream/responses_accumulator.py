"""Folding streamed Responses events into the final response, and one request's timings.

:class:`ResponseAccumulator` folds events into a :class:`ResponseOutput`: the answer text, the
reasoning text, function calls with their complete argument JSON, built-in tool calls (web
search, python, MCP) with their last status and input, and, from the terminal event, the usage,
status and incomplete reason. Items are told apart by ``item_id``, not ``output_index``, because
vLLM 0.13.0's ``output_index`` values do not line up between an item's events.

:class:`ResponseResult` is one request's events with their arrival times, the Responses twin of
:class:`~gptoss_modal.stream.accumulator.ChatResult`: TTFT three ways (first event, first output
delta, first answer delta), the last output delta, gaps and decode speed (the one definition in
:func:`~gptoss_modal.stream.accumulator.decode_tokens_per_s`), folded on demand.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from msgspec.structs import replace

from gptoss_modal.stream.accumulator import ToolCall, decode_tokens_per_s
from gptoss_modal.stream.responses import (
    AnyResponseEvent,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    OutputItem,
    OutputItemEvent,
    OutputTextDelta,
    ReasoningTextDelta,
    ResponseLifecycleEvent,
    ResponseObject,
    ResponseUsage,
    ToolCallArgumentsDelta,
    ToolCallArgumentsDone,
    ToolCallStatusEvent,
)

__all__ = ["BuiltinToolCall", "ResponseAccumulator", "ResponseOutput", "ResponseResult"]

_FUNCTION_CALL = "function_call"
_PLAIN_ITEMS = frozenset({"message", "reasoning", _FUNCTION_CALL})  # the rest are tool calls


@dataclass(frozen=True, slots=True)
class BuiltinToolCall:
    """A built-in tool call (``web_search_call``, ``code_interpreter_call``, ``mcp_call``, ...):
    its item id, type, last status, and input (the python tool's code, an MCP call's
    arguments; ``""`` when the tool takes none)."""

    id: str
    type: str
    status: str | None
    input: str = ""
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ResponseOutput:
    """Everything a response streamed, folded together.

    ``function_calls`` reuse the chat path's :class:`ToolCall` (``id`` is the ``call_id`` the
    next request's ``function_call_output`` names). ``status`` and ``usage`` come from the
    terminal event (``None`` before it); ``incomplete_reason`` says why a response was cut.
    """

    id: str = ""
    text: str = ""
    reasoning: str = ""
    function_calls: tuple[ToolCall, ...] = ()
    tool_calls: tuple[BuiltinToolCall, ...] = ()
    status: str | None = None
    incomplete_reason: str | None = None
    usage: ResponseUsage | None = None


class _Item:
    __slots__ = ("deltas", "done_input", "item", "status")

    def __init__(self, item: OutputItem) -> None:
        self.item = item
        self.status = item.status
        self.deltas: list[str] = []  # argument or tool-input fragments
        self.done_input: str | None = None  # the whole input, from the .done event


class ResponseAccumulator:
    """Folds events, in order, into one :class:`ResponseOutput` (text exactly as received)."""

    __slots__ = ("_items", "_pending", "_reasoning", "_text", "event_count", "response")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._items: dict[str, _Item] = {}  # by item id, in the order items began
        # vLLM 0.13.0 adds a function call under the previous item's id and streams it under
        # its own: the added item waits here for the first event naming an unknown item
        self._pending: OutputItem | None = None
        self.response: ResponseObject | None = None  # the last lifecycle event's response
        self.event_count = 0

    def add(self, event: AnyResponseEvent) -> None:
        """Fold one event in."""
        self.event_count += 1
        if isinstance(event, OutputTextDelta):
            self._text.append(event.delta)
        elif isinstance(event, ReasoningTextDelta):
            self._reasoning.append(event.delta)
        elif isinstance(event, (FunctionCallArgumentsDelta, ToolCallArgumentsDelta)):
            self._item(event.item_id).deltas.append(event.delta)
        elif isinstance(event, FunctionCallArgumentsDone):
            self._item(event.item_id).done_input = event.arguments
        elif isinstance(event, ToolCallArgumentsDone):
            self._item(event.item_id).done_input = event.value
        elif isinstance(event, ToolCallStatusEvent):
            self._item(event.item_id).status = event.status
        elif isinstance(event, OutputItemEvent):
            self._add_item(event.item)
        elif isinstance(event, ResponseLifecycleEvent):
            self.response = event.response

    def _item(self, item_id: str) -> _Item:
        parts = self._items.get(item_id)
        if parts is None:  # a delta before its item (or 0.13.0's call): keep it all the same
            pending, self._pending = self._pending, None
            item = OutputItem(id=item_id) if pending is None else replace(pending, id=item_id)
            parts = self._items[item_id] = _Item(item)
        return parts

    def _add_item(self, item: OutputItem) -> None:
        key = item.key
        parts = self._items.get(key)
        if parts is None:
            self._items[key] = _Item(item)
            return
        if parts.item.type not in ("", item.type):  # 0.13.0's call, added under another's id
            self._pending = item
            return
        # .done carries the complete item (its call id kept from when it was added: 0.13.0's
        # done item has a fresh one)
        call_id = parts.item.call_id or item.call_id
        parts.item = replace(item, id=key, call_id=call_id)
        if item.status is not None:
            parts.status = item.status

    def output(self) -> ResponseOutput:
        """The response so far."""
        calls: list[ToolCall] = []
        tools: list[BuiltinToolCall] = []
        for parts in self._items.values():
            item = parts.item
            streamed = "".join(parts.deltas)
            value = parts.done_input if parts.done_input is not None else streamed
            if item.type == _FUNCTION_CALL:
                arguments = item.arguments if item.arguments else value
                calls.append(
                    ToolCall(len(calls), item.call_id or item.key, item.name or "", arguments)
                )
            elif item.type not in _PLAIN_ITEMS:
                value = value or item.code or item.arguments or ""
                tools.append(BuiltinToolCall(item.key, item.type, parts.status, value, item.name))
        response = self.response
        terminal = response is not None and response.status not in (None, "in_progress")
        usage = response.usage if response is not None else None
        details = response.incomplete_details if response is not None else None
        return ResponseOutput(
            id=response.id if response is not None else "",
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            function_calls=tuple(calls),
            tool_calls=tuple(tools),
            status=response.status if terminal and response is not None else None,
            incomplete_reason=details.reason if details is not None else None,
            usage=usage,
        )


class ResponseResult:
    """One streamed Responses request: its events with their arrival times, and what follows.

    The same clock and stamps as :class:`~gptoss_modal.stream.accumulator.ChatResult`: ``started``
    just before the request is sent, ``response_at`` when the headers arrived, each event's
    ``arrival`` once per network read. ``chunks`` is the list of events (named as chat's, so the
    client reads both alike; :attr:`events` is the same list). ``done`` is set by the terminal
    event. While a stream runs this is the partial result errors carry as ``partial``.
    """

    __slots__ = ("_accumulator", "_folded", "chunks", "done", "response_at", "started")

    def __init__(self, started: float = 0.0) -> None:
        self.started = started
        self.response_at: float | None = None
        self.chunks: list[AnyResponseEvent] = []
        self.done = False
        self._accumulator = ResponseAccumulator()
        self._folded = 0

    def __repr__(self) -> str:
        state = "done" if self.done else "partial"
        return f"<ResponseResult {state}, {len(self.chunks)} events, {self.output_tokens} tokens>"

    @property
    def events(self) -> list[AnyResponseEvent]:
        """Every event received so far, in order."""
        return self.chunks

    @property
    def accumulator(self) -> ResponseAccumulator:
        """The accumulator, with every event received so far folded in."""
        if self._folded < len(self.chunks):
            add = self._accumulator.add
            for event in self.chunks[self._folded :]:
                add(event)
            self._folded = len(self.chunks)
        return self._accumulator

    @property
    def output(self) -> ResponseOutput:
        """The response so far: text, reasoning, calls, status, usage."""
        return self.accumulator.output()

    @property
    def text(self) -> str:
        """The answer so far."""
        return self.output.text

    @property
    def reasoning(self) -> str:
        """The reasoning so far."""
        return self.output.reasoning

    @property
    def usage(self) -> ResponseUsage | None:
        """The terminal event's usage (``None`` before it)."""
        response = self.accumulator.response
        return response.usage if response is not None else None

    @property
    def output_tokens(self) -> int | None:
        """Generated tokens (reasoning included) according to the usage, if it came."""
        usage = self.usage
        return usage.output_tokens if usage is not None else None

    def _since_start(self, event: AnyResponseEvent | None) -> float | None:
        return None if event is None else event.arrival - self.started

    @property
    def first_chunk_s(self) -> float | None:
        """Time to the first event of any kind (``response.created``)."""
        return self._since_start(self.chunks[0] if self.chunks else None)

    @property
    def ttft_s(self) -> float | None:
        """Time to the first output delta: reasoning, answer, or a call's arguments."""
        return self._since_start(next((e for e in self.chunks if e.has_output), None))

    @property
    def ttft_content_s(self) -> float | None:
        """Time to the first answer delta (gpt-oss reasons first, so this is later)."""
        return self._since_start(next((e for e in self.chunks if e.has_content), None))

    @property
    def ttlt_s(self) -> float | None:
        """Time to the last output delta."""
        return self._since_start(next((e for e in reversed(self.chunks) if e.has_output), None))

    def gaps_s(self) -> list[float]:
        """Gaps between consecutive output deltas, in seconds."""
        stamps = [e.arrival for e in self.chunks if e.has_output]
        return [b - a for a, b in itertools.pairwise(stamps)]

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Decode speed after the first token: output tokens - 1 over the time from the first
        output delta to the last (:func:`decode_tokens_per_s`). Not from the first event, as
        for chat: ``response.created`` is sent before the engine has made any token."""
        return decode_tokens_per_s(self.output_tokens, self.ttft_s, self.ttlt_s)
