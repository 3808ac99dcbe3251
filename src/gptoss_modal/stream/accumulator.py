"""Folding streamed chunks into a message, and one request's timings.

:class:`ChatAccumulator` folds chunks into the final :class:`ChatMessage` per choice (content,
reasoning, complete tool calls, finish and stop reason) and keeps the last usage.
:class:`ChatResult` is one request's chunks with their arrival times: the timings (time to first
chunk, first token, first content token, last token, gaps, per-chunk token counts, decode speed)
and the accumulated message are computed from it on demand, so receiving a chunk costs only its
parse. :func:`time_per_output_token_s` and :func:`decode_tokens_per_s` are the one definition of
decode speed, which ``gptoss-modal chat`` and the benchmark both use.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import msgspec

from gptoss_modal._exceptions import ChunkParseError
from gptoss_modal.stream.chunks import (
    ANY_JSON_DECODER,
    ChatChunk,
    Choice,
    ToolCallDelta,
    Usage,
    preview,
)

__all__ = [
    "ChatAccumulator",
    "ChatMessage",
    "ChatResult",
    "ToolCall",
    "decode_tokens_per_s",
    "time_per_output_token_s",
]


def time_per_output_token_s(
    output_tokens: int | None, first_chunk_at: float | None, last_token_at: float | None
) -> float | None:
    """Seconds per token after the first: (last token's chunk - first chunk) / (tokens - 1).

    ``first_chunk_at`` is the first chunk of any kind: vLLM sends its role chunk once the engine
    has made the first token. ``output_tokens`` counts every generated token, gpt-oss's hidden
    harmony headers included, so timing from the first visible token would overstate the speed.
    ``None`` with fewer than two tokens or without the stamps.
    """
    if (
        output_tokens is None
        or output_tokens < 2
        or first_chunk_at is None
        or last_token_at is None
    ):
        return None
    return (last_token_at - first_chunk_at) / (output_tokens - 1)


def decode_tokens_per_s(
    output_tokens: int | None, first_chunk_at: float | None, last_token_at: float | None
) -> float | None:
    """Decode speed after the first token, 1 / :func:`time_per_output_token_s`; ``None`` when
    that is ``None`` or not positive (every token arrived in one read)."""
    tpot = time_per_output_token_s(output_tokens, first_chunk_at, last_token_at)
    return None if tpot is None or tpot <= 0 else 1.0 / tpot


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
            return ANY_JSON_DECODER.decode(self.arguments)
        except msgspec.DecodeError as exc:
            raise ChunkParseError(
                f"tool call {self.index} ({self.name}) has arguments that are not valid JSON "
                f"({exc}): {preview(self.arguments)}"
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

    def add(self, choice: Choice) -> None:
        """Fold one chunk's part of this choice in."""
        delta = choice.delta
        if delta.content:
            self.content.append(delta.content)
        reasoning = delta.reasoning_text
        if reasoning:
            self.reasoning.append(reasoning)
        if delta.tool_calls:
            for call in delta.tool_calls:
                _add_tool_call(self, call)
        if delta.role is not None and self.role is None:
            self.role = delta.role
        if choice.finish_reason is not None:
            self.finish_reason = choice.finish_reason
        if choice.stop_reason is not None:
            self.stop_reason = choice.stop_reason


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
            parts.add(choice)

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
        return self._since_start(next((c for c in self.chunks if c.has_content), None))

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
        """Decode speed after the first token (:func:`decode_tokens_per_s`): completion tokens
        - 1 over the time from the first chunk to the last token."""
        return decode_tokens_per_s(self.completion_tokens, self.first_chunk_s, self.ttlt_s)
