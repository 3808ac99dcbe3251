"""vLLM's streamed chat-completion chunks: typed parsing, and folding them into a message.

``parse_chat_chunk`` turns one server-sent event into a :class:`ChatChunk` or :data:`DONE`.
It understands what vLLM 0.13.0 and later send (see ``docs/streaming.md``): ``content``;
``reasoning``, falling back to the deprecated ``reasoning_content``; ``tool_calls`` deltas (the
first with ``id``, ``type`` and the function name, later ones with argument fragments, several
calls told apart by ``index``); ``role``; ``finish_reason`` and ``stop_reason`` on a finishing
chunk that may still carry text; the usage chunk with ``"choices": []``. Unknown fields are
ignored. An in-stream ``{"error": {...}}`` event raises :class:`UpstreamError`; malformed JSON
or a chunk of the wrong shape raises :class:`ChunkParseError` saying what was wrong and where.

The chunk types are ``msgspec`` structs decoded straight from the JSON text: one C-level pass
builds and type-checks the whole chunk (``benchmarks/bench_streaming.py`` measures this against
``orjson`` and ``json`` followed by building objects in Python). They are not tracked by the
garbage collector, which matters when a benchmark holds millions of them.

:class:`ChatAccumulator` folds chunks into the final :class:`ChatMessage` per choice (content,
reasoning, complete tool calls, finish and stop reason) and keeps the last usage.
:class:`ChatResult` is one request's chunks with their arrival times: the timings (time to first
chunk, first token, first content token, last token, gaps, per-chunk token counts) and the
accumulated message are computed from it on demand, so receiving a chunk costs only its parse.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final, Literal, NoReturn

import msgspec

from gptoss_modal._exceptions import ChunkParseError, UpstreamError
from gptoss_modal.stream.sse import ServerSentEvent, SSEDecoder

__all__ = [
    "DONE",
    "ChatAccumulator",
    "ChatChunk",
    "ChatChunkDecoder",
    "ChatMessage",
    "ChatResult",
    "Choice",
    "Delta",
    "FunctionDelta",
    "StreamEnd",
    "ToolCall",
    "ToolCallDelta",
    "Usage",
    "parse_chat_chunk",
    "parse_chat_chunks",
]


class StreamEnd(enum.Enum):
    """The type of :data:`DONE`."""

    DONE = "[DONE]"


DONE: Final = StreamEnd.DONE
"""What :func:`parse_chat_chunk` returns for the ``data: [DONE]`` event that ends a stream."""

_PREVIEW_CHARS = 200  # how much of a bad event an error message quotes


class FunctionDelta(msgspec.Struct, frozen=True, gc=False):
    """A fragment of a tool call's function: the name comes first, then argument text."""

    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(msgspec.Struct, frozen=True, gc=False):
    """A fragment of one tool call; ``index`` says which call of the message it belongs to."""

    index: int
    id: str | None = None
    type: str | None = None
    function: FunctionDelta | None = None


class Delta(msgspec.Struct, frozen=True, gc=False):
    """What one chunk adds to a choice's message.

    vLLM 0.13.0 sends reasoning both as ``reasoning`` and as the deprecated
    ``reasoning_content``; from 0.16 only ``reasoning``. Use :attr:`reasoning_text`.
    """

    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    reasoning_content: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] | None = None

    @property
    def reasoning_text(self) -> str | None:
        """``reasoning``, or ``reasoning_content`` when only the deprecated field is present."""
        return self.reasoning if self.reasoning is not None else self.reasoning_content


class Choice(msgspec.Struct, frozen=True, gc=False):
    """One choice of a chunk: its delta and, on the finishing chunk, why generation stopped."""

    index: int
    delta: Delta
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class Usage(msgspec.Struct, frozen=True, gc=False):
    """Token counts: on the final usage chunk, or on every chunk with continuous usage stats
    (then ``completion_tokens`` counts every token generated so far, this chunk's included)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatChunk(msgspec.Struct, gc=False):
    """One ``chat.completion.chunk``.

    ``arrival`` is the client's ``time.perf_counter()`` when the network read that completed this
    chunk returned (one stamp per read, taken before parsing); 0.0 when parsed offline.
    The properties read choice 0, which is the only choice unless the request set ``n``.
    """

    choices: tuple[Choice, ...]
    id: str = ""
    model: str = ""
    created: int = 0
    usage: Usage | None = None
    arrival: float = 0.0

    @property
    def delta(self) -> Delta | None:
        """Choice 0's delta, or ``None`` on a usage-only chunk."""
        return self.choices[0].delta if self.choices else None

    @property
    def content(self) -> str | None:
        """Choice 0's content text, if this chunk carries any."""
        return self.choices[0].delta.content if self.choices else None

    @property
    def reasoning(self) -> str | None:
        """Choice 0's reasoning text (``reasoning``, else ``reasoning_content``), if any."""
        return self.choices[0].delta.reasoning_text if self.choices else None

    @property
    def tool_calls(self) -> tuple[ToolCallDelta, ...]:
        """Choice 0's tool-call fragments (empty when there are none)."""
        return (self.choices[0].delta.tool_calls or ()) if self.choices else ()

    @property
    def finish_reason(self) -> str | None:
        """Choice 0's finish reason; set only on the finishing chunk."""
        return self.choices[0].finish_reason if self.choices else None

    @property
    def has_output(self) -> bool:
        """Whether any choice carries generated text: reasoning, content or a tool call."""
        for choice in self.choices:
            delta = choice.delta
            if delta.content or delta.reasoning or delta.reasoning_content or delta.tool_calls:
                return True
        return False


_CHUNK_DECODER: Final = msgspec.json.Decoder(ChatChunk)
_ANY_DECODER: Final = msgspec.json.Decoder()


def parse_chat_chunk(
    event: ServerSentEvent, *, arrival: float = 0.0
) -> ChatChunk | Literal[StreamEnd.DONE]:
    """Turn one event into a typed chunk, or :data:`DONE` for ``data: [DONE]``.

    ``arrival`` is stored on the chunk (the client passes the time of the read).
    Raises :class:`UpstreamError` for an in-stream error event and :class:`ChunkParseError`
    (naming the problem and quoting the event) for anything else that is not a chunk.
    """
    into: list[ChatChunk] = []
    return DONE if parse_chat_chunks((event,), into, arrival=arrival) else into[0]


def parse_chat_chunks(
    events: Iterable[ServerSentEvent], into: list[ChatChunk], *, arrival: float = 0.0
) -> bool:
    """Parse events in order, appending each chunk to ``into``; ``True`` once ``[DONE]`` came.

    Events after ``[DONE]`` are not parsed. This is :func:`parse_chat_chunk` for a whole
    network read (one call per read, not per chunk); it raises the same errors, after
    appending the chunks that came before the bad event.
    """
    decode = _CHUNK_DECODER.decode
    append = into.append
    for event in events:
        data = event.data
        if data == "[DONE]":
            return True
        try:
            chunk = decode(data)
        except msgspec.DecodeError as exc:
            _raise_not_a_chunk(data, exc)
        except RecursionError as exc:  # msgspec's nesting limit (about 1000 levels)
            raise ChunkParseError(
                f"event data is nested too deeply to parse: {_preview(data)}"
            ) from exc
        chunk.arrival = arrival
        append(chunk)
    return False


_DONE_LINE: Final = "data: [DONE]"


class ChatChunkDecoder:
    """The bytes of a streamed chat completion in, typed chunks out (sans-IO).

    ``feed(data, into, arrival=...)`` is ``parse_chat_chunks(SSEDecoder.feed(data), into,
    arrival=...)``, with the same results and errors, and ``close()`` is the SSE decoder's.
    When a read holds only vLLM-shaped events (one ``data:`` line each) it decodes their JSON
    without building the intermediate events, about a fifth less work per chunk.
    """

    __slots__ = ("_done", "_sse")

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._done = False

    @property
    def done(self) -> bool:
        """Whether ``[DONE]`` has come."""
        return self._done

    def feed(self, data: bytes, into: list[ChatChunk], *, arrival: float = 0.0) -> bool:
        """Decode one read, appending its chunks to ``into``; ``True`` once ``[DONE]`` came.

        Raises what :func:`parse_chat_chunks` raises, after appending the chunks before the bad
        event; bytes after ``[DONE]`` are not parsed.
        """
        if self._done:
            return True
        lines, events = self._sse.feed_plain(data)
        if lines and _DONE_LINE not in lines:
            decode = _CHUNK_DECODER.decode
            try:
                if len(lines) == 1:  # one event per read, as vLLM writes
                    chunk = decode(lines[0][6:])
                    chunk.arrival = arrival
                    into.append(chunk)
                    return False
                chunks = [decode(line[6:]) for line in lines]
            except (msgspec.DecodeError, RecursionError):
                pass  # the event-by-event path appends the good chunks and names the bad one
            else:
                for chunk in chunks:
                    chunk.arrival = arrival
                into += chunks
                return False
        if lines:
            last_id = self._sse.last_event_id
            events = [ServerSentEvent(line[6:], "message", last_id) for line in lines]
        self._done = parse_chat_chunks(events, into, arrival=arrival)
        return self._done

    def close(self) -> str:
        """End the stream: the text of an unfinished event that was discarded (``""`` if none)."""
        return self._sse.close()


def _raise_not_a_chunk(data: str, exc: msgspec.DecodeError) -> NoReturn:
    """Raise the error for event data that did not decode as a chunk."""
    if isinstance(exc, msgspec.ValidationError):  # valid JSON, wrong shape: maybe vLLM's error
        upstream = _upstream_error(data)
        if upstream is not None:
            raise upstream from None
        raise ChunkParseError(
            f"event is not a chat completion chunk ({exc}): {_preview(data)}"
        ) from exc
    raise ChunkParseError(f"event data is not valid JSON ({exc}): {_preview(data)}") from exc


def _upstream_error(data: str) -> UpstreamError | None:
    """vLLM's in-stream error event as an :class:`UpstreamError`; ``None`` if it is not one."""
    try:
        obj = _ANY_DECODER.decode(data)
    except msgspec.DecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    error = obj.get("error")
    if isinstance(error, dict):  # vLLM >= 0.10: {"error": {"message", "type", "param", "code"}}
        return _upstream(error)
    if isinstance(error, str):
        return UpstreamError(error)
    if obj.get("object") == "error":  # older vLLM: the error's fields at the top level
        return _upstream(obj)
    return None


def _upstream(error: dict[str, Any]) -> UpstreamError:
    message, kind, code, param = (error.get(k) for k in ("message", "type", "code", "param"))
    return UpstreamError(
        str(message) if message is not None else "(no message)",
        type=kind if isinstance(kind, str) else None,
        code=code if isinstance(code, (int, str)) else None,
        param=param if isinstance(param, str) else None,
    )


def _preview(data: str) -> str:
    return repr(data if len(data) <= _PREVIEW_CHARS else data[:_PREVIEW_CHARS] + "...")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A complete tool call: its id, the function name and the whole argument JSON text."""

    index: int
    id: str
    name: str
    arguments: str
    type: str = "function"

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON; :class:`ChunkParseError` if they are not JSON."""
        try:
            return _ANY_DECODER.decode(self.arguments)
        except msgspec.DecodeError as exc:
            raise ChunkParseError(
                f"tool call {self.index} ({self.name}) has arguments that are not valid JSON "
                f"({exc}): {_preview(self.arguments)}"
            ) from exc


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """Everything one choice streamed, folded together, and why it stopped."""

    role: str = "assistant"
    content: str = ""
    reasoning: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    finish_reason: str | None = None
    stop_reason: int | str | None = None


class _ToolCallParts:
    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id = ""
        self.type = "function"
        self.name: list[str] = []
        self.arguments: list[str] = []


class _ChoiceParts:
    __slots__ = ("content", "finish_reason", "reasoning", "role", "stop_reason", "tool_calls")

    def __init__(self) -> None:
        self.role: str | None = None
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: dict[int, _ToolCallParts] = {}
        self.finish_reason: str | None = None
        self.stop_reason: int | str | None = None


class ChatAccumulator:
    """Folds chunks, in order, into one :class:`ChatMessage` per choice and the last usage.

    Text is concatenated exactly as received. A tool call's ``id`` and ``type`` come from the
    delta that carries them, its name and arguments are the concatenation of their fragments.
    """

    __slots__ = ("_choices", "chunk_count", "usage")

    def __init__(self) -> None:
        self._choices: dict[int, _ChoiceParts] = {}
        self.usage: Usage | None = None
        self.chunk_count = 0

    def add(self, chunk: ChatChunk) -> None:
        """Fold one chunk in."""
        self.chunk_count += 1
        if chunk.usage is not None:
            self.usage = chunk.usage
        for choice in chunk.choices:
            parts = self._choices.get(choice.index)
            if parts is None:
                parts = self._choices[choice.index] = _ChoiceParts()
            delta = choice.delta
            if delta.content:
                parts.content.append(delta.content)
            reasoning = delta.reasoning_text
            if reasoning:
                parts.reasoning.append(reasoning)
            if delta.tool_calls:
                for call in delta.tool_calls:
                    _add_tool_call(parts, call)
            if delta.role is not None and parts.role is None:
                parts.role = delta.role
            if choice.finish_reason is not None:
                parts.finish_reason = choice.finish_reason
            if choice.stop_reason is not None:
                parts.stop_reason = choice.stop_reason

    @property
    def indices(self) -> tuple[int, ...]:
        """The choice indices seen so far, in order."""
        return tuple(sorted(self._choices))

    def message(self, index: int = 0) -> ChatMessage:
        """Choice ``index`` so far (an empty message if that choice sent nothing)."""
        parts = self._choices.get(index)
        if parts is None:
            return ChatMessage()
        calls = tuple(
            ToolCall(
                index=i,
                id=call.id,
                name="".join(call.name),
                arguments="".join(call.arguments),
                type=call.type,
            )
            for i, call in sorted(parts.tool_calls.items())
        )
        return ChatMessage(
            role=parts.role or "assistant",
            content="".join(parts.content),
            reasoning="".join(parts.reasoning),
            tool_calls=calls,
            finish_reason=parts.finish_reason,
            stop_reason=parts.stop_reason,
        )


def _add_tool_call(parts: _ChoiceParts, delta: ToolCallDelta) -> None:
    call = parts.tool_calls.get(delta.index)
    if call is None:
        call = parts.tool_calls[delta.index] = _ToolCallParts()
    if delta.id:
        call.id = delta.id
    if delta.type:
        call.type = delta.type
    function = delta.function
    if function is not None:
        if function.name:
            call.name.append(function.name)
        if function.arguments:
            call.arguments.append(function.arguments)


class ChatResult:
    """One streamed request: its chunks with their arrival times, and what follows from them.

    Times are ``time.perf_counter()`` seconds (``CLOCK_MONOTONIC`` on Linux, so comparable with
    stamps taken by another process on the same machine). ``started`` is taken just before the
    request is sent, ``response_at`` when the reply's headers arrived, and each chunk's
    ``arrival`` once per network read, before parsing. The ``*_s`` timings are seconds since
    ``started`` (``None`` when the stream had no such chunk). The message, finish reason and
    usage are folded from the chunks when first asked for, and again only over new chunks.

    While a stream is running this is the partial result; errors raised mid-stream carry it as
    ``partial``.
    """

    __slots__ = ("_accumulator", "_folded", "chunks", "done", "response_at", "started")

    def __init__(self, started: float = 0.0) -> None:
        self.started = started
        self.response_at: float | None = None
        self.chunks: list[ChatChunk] = []
        self.done = False  # data: [DONE] was received
        self._accumulator = ChatAccumulator()
        self._folded = 0

    def __repr__(self) -> str:
        state = "done" if self.done else "partial"
        return f"<ChatResult {state}, {len(self.chunks)} chunks, {self.completion_tokens} tokens>"

    @property
    def accumulator(self) -> ChatAccumulator:
        """The accumulator, with every chunk received so far folded in."""
        chunks = self.chunks
        if self._folded < len(chunks):
            add = self._accumulator.add
            for chunk in chunks[self._folded :]:
                add(chunk)
            self._folded = len(chunks)
        return self._accumulator

    @property
    def message(self) -> ChatMessage:
        """Choice 0's message so far (content, reasoning, tool calls, finish reason)."""
        return self.accumulator.message(0)

    @property
    def content(self) -> str:
        """Choice 0's content so far."""
        return self.message.content

    @property
    def reasoning(self) -> str:
        """Choice 0's reasoning so far."""
        return self.message.reasoning

    @property
    def finish_reason(self) -> str | None:
        """Choice 0's finish reason (``stop``, ``length``, ``tool_calls``), if it finished."""
        return self.message.finish_reason

    @property
    def usage(self) -> Usage | None:
        """The last usage the server sent (the final usage chunk once the stream is done)."""
        return self.accumulator.usage

    @property
    def completion_tokens(self) -> int | None:
        """Generated tokens according to the server's usage, if it sent any."""
        usage = self.usage
        return usage.completion_tokens if usage is not None else None

    def _since_start(self, chunk: ChatChunk | None) -> float | None:
        return None if chunk is None else chunk.arrival - self.started

    @property
    def first_chunk_s(self) -> float | None:
        """Time to the first chunk of any kind (vLLM's first is the empty role chunk)."""
        return self._since_start(self.chunks[0] if self.chunks else None)

    @property
    def ttft_s(self) -> float | None:
        """Time to the first chunk carrying generated text: reasoning, content or a tool call."""
        return self._since_start(next((c for c in self.chunks if c.has_output), None))

    @property
    def ttft_content_s(self) -> float | None:
        """Time to the first chunk carrying content (gpt-oss reasons first, so this is later)."""
        return self._since_start(
            next((c for c in self.chunks if any(ch.delta.content for ch in c.choices)), None)
        )

    @property
    def ttlt_s(self) -> float | None:
        """Time to the last chunk of the generation (the last one with a choice, so not the
        usage chunk that follows)."""
        return self._since_start(next((c for c in reversed(self.chunks) if c.choices), None))

    def gaps_s(self) -> list[float]:
        """Gaps between consecutive chunks that carry generated text, in seconds.

        With ``--stream-interval N`` one chunk holds up to N tokens: divide by
        :meth:`chunk_tokens` for a per-token latency.
        """
        stamps = [c.arrival for c in self.chunks if c.has_output]
        return [b - a for a, b in itertools.pairwise(stamps)]

    def chunk_tokens(self) -> list[int | None]:
        """Tokens generated per chunk, from continuous usage stats; ``None`` where a chunk had
        no usage (request ``continuous_usage=True`` to get them on every chunk)."""
        counts: list[int | None] = []
        previous = 0
        for chunk in self.chunks:
            usage = chunk.usage
            if usage is None:
                counts.append(None)
            else:
                counts.append(usage.completion_tokens - previous)
                previous = usage.completion_tokens
        return counts

    @property
    def decode_tokens_per_s(self) -> float | None:
        """Tokens per second after the first: (completion tokens - 1) / (last - first token)."""
        tokens, first, last = self.completion_tokens, self.ttft_s, self.ttlt_s
        if tokens is None or first is None or last is None or last <= first or tokens < 2:
            return None
        return (tokens - 1) / (last - first)
