"""vLLM's streamed chat-completion chunks: the typed chunk, and parsing events into it.

``parse_chat_chunk`` turns one server-sent event into a :class:`ChatChunk` or :data:`DONE`.
It understands what vLLM 0.13.0 and later send (see ``docs/streaming.md``): ``content``;
``reasoning``, falling back to the deprecated ``reasoning_content``; ``tool_calls`` deltas (the
first with ``id``, ``type`` and the function name, later ones with argument fragments, several
calls told apart by ``index``); ``role``; ``finish_reason`` and ``stop_reason`` on a finishing
chunk that may still carry text; the usage chunk with ``"choices": []``. Unknown fields are
ignored. An in-stream ``{"error": {...}}`` event raises :class:`UpstreamError`; malformed JSON
or a chunk of the wrong shape raises :class:`ChunkParseError` saying what was wrong and where.
These two translations stay here, not in :mod:`gptoss_modal.stream.errors`, because that module
needs aiohttp and the parser must load without it.

The chunk types are ``msgspec`` structs decoded straight from the JSON text: one C-level pass
builds and type-checks the whole chunk (``benchmarks/bench_streaming.py`` measures this against
``orjson`` and ``json`` followed by building objects in Python). They are not tracked by the
garbage collector, which matters when a benchmark holds millions of them.

What a chunk carries is defined once, by :attr:`ChatChunk.flags` (:data:`CHUNK_CHOICES`,
:data:`CHUNK_OUTPUT`, :data:`CHUNK_CONTENT`): the accumulator's timings and the benchmark's
records both read it.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any, Final, Literal, NoReturn

import msgspec

from gptoss_modal._exceptions import ChunkParseError, UpstreamError
from gptoss_modal.stream.sse import ServerSentEvent

__all__ = [
    "CHUNK_CHOICES",
    "CHUNK_CONTENT",
    "CHUNK_OUTPUT",
    "DONE",
    "ChatChunk",
    "Choice",
    "Delta",
    "FunctionDelta",
    "StreamEnd",
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

# Bits of ChatChunk.flags (the benchmark stores them per chunk in its records).
CHUNK_CHOICES: Final = 1  # the chunk has a choice (everything but the usage-only chunk)
CHUNK_OUTPUT: Final = 2  # ...carrying generated text: reasoning, content or a tool call
CHUNK_CONTENT: Final = 4  # ...carrying content


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


class PromptTokensDetails(msgspec.Struct, frozen=True, gc=False):
    """``usage.prompt_tokens_details``: prompt tokens served from the prefix cache (vLLM sends
    it with ``--enable-prompt-tokens-details``; ``None`` when it does not count them)."""

    cached_tokens: int | None = None


class Usage(msgspec.Struct, frozen=True, gc=False):
    """Token counts: on the final usage chunk, or on every chunk with continuous usage stats
    (then ``completion_tokens`` counts every token generated so far, this chunk's included)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None

    @property
    def cached_tokens(self) -> int | None:
        """Prompt tokens served from the prefix cache; ``None`` when the server did not say."""
        details = self.prompt_tokens_details
        return details.cached_tokens if details is not None else None


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
    def flags(self) -> int:
        """What this chunk carries, over all its choices: :data:`CHUNK_CHOICES`,
        :data:`CHUNK_OUTPUT` and :data:`CHUNK_CONTENT` bits (0 for the usage-only chunk)."""
        bits = 0
        for choice in self.choices:
            bits |= CHUNK_CHOICES
            delta = choice.delta
            if delta.content:
                bits |= CHUNK_OUTPUT | CHUNK_CONTENT
            elif delta.reasoning or delta.reasoning_content or delta.tool_calls:
                bits |= CHUNK_OUTPUT
        return bits

    @property
    def has_output(self) -> bool:
        """Whether any choice carries generated text: reasoning, content or a tool call."""
        return bool(self.flags & CHUNK_OUTPUT)

    @property
    def has_content(self) -> bool:
        """Whether any choice carries content (not reasoning, not a tool call)."""
        return bool(self.flags & CHUNK_CONTENT)


# Shared with the decoder and accumulator modules (one decoder each, built once); not in __all__.
CHUNK_JSON_DECODER: Final = msgspec.json.Decoder(ChatChunk)
ANY_JSON_DECODER: Final = msgspec.json.Decoder()


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
    decode = CHUNK_JSON_DECODER.decode
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
                f"event data is nested too deeply to parse: {preview(data)}"
            ) from exc
        chunk.arrival = arrival
        append(chunk)
    return False


def _raise_not_a_chunk(data: str, exc: msgspec.DecodeError) -> NoReturn:
    """Raise the error for event data that did not decode as a chunk."""
    if isinstance(exc, msgspec.ValidationError):  # valid JSON, wrong shape: maybe vLLM's error
        upstream = _upstream_error(data)
        if upstream is not None:
            raise upstream from None
        raise ChunkParseError(
            f"event is not a chat completion chunk ({exc}): {preview(data)}"
        ) from exc
    raise ChunkParseError(f"event data is not valid JSON ({exc}): {preview(data)}") from exc


def _upstream_error(data: str) -> UpstreamError | None:
    """vLLM's in-stream error event as an :class:`UpstreamError`; ``None`` if it is not one."""
    try:
        obj = ANY_JSON_DECODER.decode(data)
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


def preview(data: str) -> str:
    return repr(data if len(data) <= _PREVIEW_CHARS else data[:_PREVIEW_CHARS] + "...")
