"""vLLM's streamed Responses API (``/v1/responses``) events: the typed events, and parsing them.

Each event on the wire is ``event: <type>`` plus ``data: <json>`` and there is no ``[DONE]``:
the stream ends after a terminal event (``response.completed``, ``response.incomplete``, or
``response.failed``, which vLLM itself never sends). The ``event:`` field names the type, and
:func:`parse_response_events` picks the struct by it, so data whose ``type`` disagrees with its
``event:`` line is a :class:`ChunkParseError`, not a silently different event. A type this
module does not know becomes an :class:`UnknownEvent` that keeps its data (kept, never
dropped). An in-stream ``error`` event, or vLLM's ``{"error": {...}}`` payload, raises
:class:`UpstreamError` with vLLM's message; malformed JSON or a wrong shape raises
:class:`ChunkParseError` saying what and quoting the event.

Both supported vLLM versions are read: 0.13.0 serialises without ``by_alias`` and sends its own
``response.reasoning_part.added`` / ``.done`` types; 0.33.0 serialises with ``by_alias``, sends
``response.incomplete`` when a response is cut and ``response.mcp_call*`` for MCP tools, and
reports cached, reasoning and per-turn token counts. ``docs/streaming.md`` has the table.

The events are ``msgspec`` structs decoded straight from the JSON text, as chat chunks are.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar, Final

import msgspec

from gptoss_modal._exceptions import ChunkParseError, UpstreamError
from gptoss_modal.stream.chunks import ANY_JSON_DECODER, _upstream, _upstream_error, preview
from gptoss_modal.stream.sse import ServerSentEvent

__all__ = [
    "RESPONSE_TERMINAL_TYPES",
    "AnyResponseEvent",
    "ContentPart",
    "ContentPartEvent",
    "ErrorEvent",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "OutputItem",
    "OutputItemEvent",
    "OutputTextDelta",
    "OutputTextDone",
    "ReasoningTextDelta",
    "ReasoningTextDone",
    "ResponseEvent",
    "ResponseLifecycleEvent",
    "ResponseObject",
    "ResponseUsage",
    "ToolCallArgumentsDelta",
    "ToolCallArgumentsDone",
    "ToolCallStatusEvent",
    "UnknownEvent",
    "parse_response_event",
    "parse_response_events",
]

RESPONSE_TERMINAL_TYPES: Final = frozenset(
    {"response.completed", "response.incomplete", "response.failed"}
)
"""The event types after which a Responses stream ends (vLLM never sends ``response.failed``)."""


# --- the parts of a response ----------------------------------------------------------------


class InputTokensDetails(msgspec.Struct, frozen=True, gc=False):
    """Cached prompt tokens; 0.33.0 adds per-turn counts (one per harmony turn)."""

    cached_tokens: int = 0
    input_tokens_per_turn: tuple[int, ...] = ()
    cached_tokens_per_turn: tuple[int, ...] = ()


class OutputTokensDetails(msgspec.Struct, frozen=True, gc=False):
    """Reasoning tokens; 0.33.0 adds tool-output and per-turn counts."""

    reasoning_tokens: int = 0
    tool_output_tokens: int = 0
    output_tokens_per_turn: tuple[int, ...] = ()


class ResponseUsage(msgspec.Struct, frozen=True, gc=False):
    """A response's token counts (``output_tokens`` includes reasoning tokens)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputTokensDetails | None = None
    output_tokens_details: OutputTokensDetails | None = None

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens served from the prefix cache."""
        details = self.input_tokens_details
        return details.cached_tokens if details is not None else 0

    @property
    def reasoning_tokens(self) -> int:
        """Output tokens spent reasoning."""
        details = self.output_tokens_details
        return details.reasoning_tokens if details is not None else 0


class ContentPart(msgspec.Struct, frozen=True, gc=False):
    """One part of an item's content: ``output_text``, ``reasoning_text``, ``refusal``, ..."""

    type: str = ""
    text: str = ""


class OutputItem(msgspec.Struct, frozen=True, gc=False):
    """One item of a response's output, whatever its ``type``: a ``message``, ``reasoning``,
    ``function_call``, ``web_search_call``, ``code_interpreter_call``, ``mcp_call``, ... Fields a
    type does not have stay at their defaults."""

    type: str = ""
    id: str | None = ""  # null on vLLM 0.13.0's function-call output_item.done
    status: str | None = None
    role: str | None = None
    content: tuple[ContentPart, ...] | None = None
    name: str | None = None  # function_call, mcp_call
    call_id: str | None = None  # function_call
    arguments: str | None = None  # function_call, mcp_call
    code: str | None = None  # code_interpreter_call
    server_label: str | None = None  # mcp_call
    item_id: str | None = None  # 0.13.0's function-call .done item names its item here

    @property
    def key(self) -> str:
        """The id the item's events use: its ``id``, or 0.13.0's ``item_id`` when that is null."""
        return self.id or self.item_id or ""

    @property
    def text(self) -> str:
        """The concatenated text of this item's content parts."""
        return "".join(part.text for part in self.content or ())


class IncompleteDetails(msgspec.Struct, frozen=True, gc=False):
    """Why a response was cut (``max_output_tokens``, ``content_filter``)."""

    reason: str | None = None


class ResponseError(msgspec.Struct, frozen=True, gc=False):
    """A failed response's error (on ``response.failed``)."""

    message: str = ""
    code: str | None = None


class ResponseObject(msgspec.Struct, frozen=True, gc=False):
    """The whole response, as the lifecycle events carry it (the terminal one complete)."""

    id: str = ""
    status: str | None = None
    model: str = ""
    created_at: float = 0
    output: tuple[OutputItem, ...] = ()
    usage: ResponseUsage | None = None
    incomplete_details: IncompleteDetails | None = None
    error: ResponseError | None = None
    previous_response_id: str | None = None

    @property
    def output_text(self) -> str:
        """The text of every ``output_text`` part of every message item, concatenated."""
        return "".join(
            part.text
            for item in self.output
            if item.type == "message"
            for part in item.content or ()
            if part.type == "output_text"
        )

    @property
    def reasoning_text(self) -> str:
        """The text of every reasoning item's content, concatenated."""
        return "".join(item.text for item in self.output if item.type == "reasoning")


# --- the events -----------------------------------------------------------------------------


class ResponseEvent(msgspec.Struct, tag_field="type", gc=False):
    """One streamed event; :attr:`type` is its wire type.

    ``arrival`` is the client's ``time.perf_counter()`` when the network read that completed the
    event returned (0.0 when parsed offline), as for chat chunks.
    """

    sequence_number: int = -1
    arrival: float = 0.0

    OUTPUT: ClassVar[bool] = False  # carries generated text (reasoning, answer or arguments)
    CONTENT: ClassVar[bool] = False  # ...of the answer itself

    @property
    def type(self) -> str:
        """The event's wire type, e.g. ``response.output_text.delta``."""
        tag = self.__struct_config__.tag
        return tag if isinstance(tag, str) else ""

    @property
    def has_output(self) -> bool:
        """Whether this event carries generated text: a reasoning, answer or argument delta."""
        return False

    @property
    def has_content(self) -> bool:
        """Whether this event carries answer text (an ``output_text`` delta)."""
        return False


class ResponseLifecycleEvent(ResponseEvent):
    """``response.created`` / ``.in_progress`` / ``.completed`` / ``.incomplete`` / ``.failed`` /
    ``.queued``: the whole response so far."""

    response: ResponseObject = ResponseObject()


class OutputItemEvent(ResponseEvent):
    """``response.output_item.added`` / ``.done``: an item begins, or ends complete."""

    output_index: int = 0
    item: OutputItem = OutputItem()


class ContentPartEvent(ResponseEvent):
    """``response.content_part.added`` / ``.done`` (and 0.13.0's ``response.reasoning_part.*``)."""

    item_id: str = ""
    output_index: int = 0
    content_index: int = 0
    part: ContentPart = ContentPart()


class _ItemEvent(ResponseEvent):
    item_id: str = ""
    output_index: int = 0


class _Delta(_ItemEvent):
    delta: str = ""
    OUTPUT = True

    @property
    def has_output(self) -> bool:
        return bool(self.delta)

    @property
    def has_content(self) -> bool:
        return self.CONTENT and bool(self.delta)


class OutputTextDelta(_Delta, tag="response.output_text.delta"):
    """A fragment of the answer."""

    content_index: int = 0
    CONTENT = True


class OutputTextDone(_ItemEvent, tag="response.output_text.done"):
    """The whole text of one answer part."""

    content_index: int = 0
    text: str = ""


class ReasoningTextDelta(_Delta, tag="response.reasoning_text.delta"):
    """A fragment of the reasoning."""

    content_index: int = 0


class ReasoningTextDone(_ItemEvent, tag="response.reasoning_text.done"):
    """The whole text of one reasoning part."""

    content_index: int = 0
    text: str = ""


class FunctionCallArgumentsDelta(_Delta, tag="response.function_call_arguments.delta"):
    """A fragment of a function call's argument JSON."""


class FunctionCallArgumentsDone(_ItemEvent, tag="response.function_call_arguments.done"):
    """A function call's whole argument JSON (``name`` in newer openai types)."""

    arguments: str = ""
    name: str | None = None


class ToolCallArgumentsDelta(_Delta):
    """A fragment of a built-in tool call's input: the python tool's code, an MCP call's
    arguments, a custom tool's input."""


class ToolCallArgumentsDone(_ItemEvent):
    """A built-in tool call's whole input (in ``code``, ``arguments`` or ``input``)."""

    code: str | None = None
    arguments: str | None = None
    input: str | None = None

    @property
    def value(self) -> str:
        """The input, whichever field carried it."""
        for text in (self.code, self.arguments, self.input):
            if text is not None:
                return text
        return ""


class ToolCallStatusEvent(_ItemEvent):
    """A built-in tool call changed status (``response.web_search_call.searching``, ...);
    :attr:`status` is the last part of the type."""

    @property
    def status(self) -> str:
        """``in_progress``, ``searching``, ``interpreting``, ``completed`` or ``failed``."""
        return self.type.rpartition(".")[2]


class ErrorEvent(ResponseEvent, tag="error"):
    """The openai API's in-stream error (parsing raises :class:`UpstreamError` for it)."""

    message: str = ""
    code: str | None = None
    param: str | None = None


class UnknownEvent(msgspec.Struct, gc=False):
    """An event of a type this module does not know, kept with its JSON text."""

    type: str
    data: str
    sequence_number: int = -1
    arrival: float = 0.0
    OUTPUT: ClassVar[bool] = False
    has_output: ClassVar[bool] = False
    has_content: ClassVar[bool] = False


def _subclass(base: type[ResponseEvent], tag: str) -> type[ResponseEvent]:
    """One event struct per wire type that shares another's fields (msgspec tags by class)."""
    name = "".join(part.title() for part in tag.replace("_", ".").split("."))
    made = msgspec.defstruct(name, [], bases=(base,), tag=tag, gc=False)
    return made  # type: ignore[return-value]  # a subclass of base, as asked


_LIFECYCLE = ("created", "in_progress", "completed", "incomplete", "failed", "queued")
_TOOL_STATUSES = {
    "response.web_search_call": ("in_progress", "searching", "completed"),
    "response.code_interpreter_call": ("in_progress", "interpreting", "completed"),
    "response.mcp_call": ("in_progress", "completed", "failed"),
    "response.file_search_call": ("in_progress", "searching", "completed"),
}
_TOOL_INPUTS = (
    "response.code_interpreter_call_code",
    "response.mcp_call_arguments",
    "response.custom_tool_call_input",
)

_EVENT_CLASSES: Final[tuple[type[ResponseEvent], ...]] = (
    OutputTextDelta,
    OutputTextDone,
    ReasoningTextDelta,
    ReasoningTextDone,
    FunctionCallArgumentsDelta,
    FunctionCallArgumentsDone,
    ErrorEvent,
    *(_subclass(ResponseLifecycleEvent, f"response.{name}") for name in _LIFECYCLE),
    *(
        _subclass(base, f"response.{kind}.{end}")
        for kind, base in (
            ("output_item", OutputItemEvent),
            ("content_part", ContentPartEvent),
            ("reasoning_part", ContentPartEvent),  # vLLM 0.13.0's own types
        )
        for end in ("added", "done")
    ),
    *(
        _subclass(ToolCallStatusEvent, f"{kind}.{status}")
        for kind, statuses in _TOOL_STATUSES.items()
        for status in statuses
    ),
    *(_subclass(ToolCallArgumentsDelta, f"{kind}.delta") for kind in _TOOL_INPUTS),
    *(_subclass(ToolCallArgumentsDone, f"{kind}.done") for kind in _TOOL_INPUTS),
)
EVENT_TYPES: Final[dict[str, type[ResponseEvent]]] = {
    str(cls.__struct_config__.tag): cls for cls in _EVENT_CLASSES
}
"""Every known wire type and its struct (not public: use the classes' ``type``)."""

_DECODERS: Final = {tag: msgspec.json.Decoder(cls) for tag, cls in EVENT_TYPES.items()}


class _TypeOnly(msgspec.Struct, gc=False):
    type: str = ""


_TYPE_DECODER: Final = msgspec.json.Decoder(_TypeOnly)
AnyResponseEvent = ResponseEvent | UnknownEvent
"""What the parser yields: a typed event, or an unknown one kept as it came."""


def parse_response_event(event: ServerSentEvent, *, arrival: float = 0.0) -> AnyResponseEvent:
    """Turn one server-sent event into a typed Responses event (see the module docstring)."""
    into: list[AnyResponseEvent] = []
    parse_response_events((event,), into, arrival=arrival)
    return into[0]


def parse_response_events(
    events: Iterable[ServerSentEvent], into: list[AnyResponseEvent], *, arrival: float = 0.0
) -> bool:
    """Parse events in order, appending each to ``into``; ``True`` once a terminal event came.

    Events after the terminal one are not parsed. Raises :class:`UpstreamError` for an in-stream
    error and :class:`ChunkParseError` for anything else that is not an event, after appending
    the events before it. A ``response.failed`` event is appended, then raises
    :class:`UpstreamError` with the response's error message.
    """
    append = into.append
    for sse in events:
        parsed = _parse(sse)
        if isinstance(parsed, ErrorEvent):
            raise _error_event(parsed)
        parsed.arrival = arrival
        append(parsed)
        kind = parsed.type
        if kind in RESPONSE_TERMINAL_TYPES:
            if kind == "response.failed":
                raise _failed(parsed)
            return True
    return False


def _parse(sse: ServerSentEvent) -> AnyResponseEvent:
    data = sse.data
    kind = sse.event
    if kind == "message":  # no event: line (vLLM always sends one): the data names its type
        kind = _type_of(data)
    # vLLM's {"error": {...}} payload (under any event name: every field of an event has a
    # default, so it would decode as an empty event), or the openai API's error event
    if kind == "error" or data.startswith('{"error"'):
        upstream = _upstream_error(data)
        if upstream is not None:
            raise upstream
    decoder = _DECODERS.get(kind)
    try:
        if decoder is None:
            return _unknown(kind, data)
        return decoder.decode(data)
    except msgspec.ValidationError as exc:  # valid JSON, wrong shape: maybe vLLM's error
        upstream = _upstream_error(data)
        if upstream is not None:
            raise upstream from None
        raise ChunkParseError(
            f"event {kind!r} is not a {kind} event ({exc}): {preview(data)}"
        ) from exc
    except msgspec.DecodeError as exc:
        raise ChunkParseError(
            f"event {kind!r} data is not valid JSON ({exc}): {preview(data)}"
        ) from exc
    except RecursionError as exc:  # msgspec's nesting limit (about 1000 levels)
        raise ChunkParseError(
            f"event {kind!r} data is nested too deeply to parse: {preview(data)}"
        ) from exc


def _type_of(data: str) -> str:
    """The ``type`` field of an event sent without an ``event:`` line."""
    try:
        return _TYPE_DECODER.decode(data).type
    except (msgspec.DecodeError, RecursionError):
        return ""  # the error comes from decoding it as an unknown event


def _unknown(kind: str, data: str) -> AnyResponseEvent:
    """An event of an unknown type: kept, if its data is a JSON object (else an error)."""
    obj = ANY_JSON_DECODER.decode(data)
    if not isinstance(obj, dict):
        raise ChunkParseError(f"event {kind!r} data is not a JSON object: {preview(data)}")
    upstream = _upstream_error(data)
    if upstream is not None:
        raise upstream
    sequence = obj.get("sequence_number")
    return UnknownEvent(
        kind or str(obj.get("type", "")), data, sequence if isinstance(sequence, int) else -1
    )


def _failed(event: AnyResponseEvent) -> UpstreamError:
    error = event.response.error if isinstance(event, ResponseLifecycleEvent) else None
    if error is None:
        return UpstreamError("the response failed (response.failed without an error)")
    return _upstream({"message": error.message, "code": error.code})


def _error_event(event: ErrorEvent) -> UpstreamError:
    return _upstream({"message": event.message, "code": event.code, "param": event.param})


def event_to_builtins(event: AnyResponseEvent) -> dict[str, Any]:
    """The event's typed fields as JSON-ready values, ``type`` included, ``arrival`` not."""
    if isinstance(event, UnknownEvent):
        obj: dict[str, Any] = ANY_JSON_DECODER.decode(event.data)
        return obj
    built: dict[str, Any] = msgspec.to_builtins(event)
    built.pop("arrival", None)
    return built
