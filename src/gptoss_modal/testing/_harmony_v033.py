"""vLLM 0.33.0's harmony streaming, reduced to what the mock's tokens exercise.

Pure. A transcription of ``vllm/parser/harmony.py`` (``HarmonyParser.process_chunk``,
``parse_delta``, ``flush``, ``_is_reasoning_token``) and of
``chat_completion/stream_processor.py``'s finish rule: every token of an engine output goes
through the harmony parser, its pieces are classed by the channel and recipient *at that
token*, and the output's delta concatenates the reasoning, the content and the tool call
pieces separately. So unlike 0.13.0 (``_engine.harmony_deltas``), a multi-token output that
crosses a channel boundary keeps each piece under its own label, and nothing is dropped when
an output ends on a stop token. A cut header at the end (``max_tokens`` reached between
messages) is returned, as vLLM's ``flush`` returns it, as ``final`` content made of the raw
token texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gptoss_modal.testing import _engine as engine

__all__ = ["Delta033", "StreamPlan033", "plan_stream"]


@dataclass(frozen=True)
class Delta033:
    """One chunk's ``DeltaMessage``: ``None`` fields are not set (not sent).

    ``reasoning_hidden`` is ``include_reasoning: false``'s explicit ``"reasoning": null``;
    ``tool`` is a tool call's ``(index, name or None, arguments)`` (a name starts a call).
    """

    content: str | None = None
    reasoning: str | None = None
    reasoning_hidden: bool = False
    tool: tuple[int, str | None, str] | None = None


@dataclass(frozen=True)
class StreamPlan033:
    """Per engine output: its delta (None: no chunk unless finishing), and the reasoning
    tokens counted once it is parsed; whether a tool call was streamed."""

    deltas: list[Delta033 | None]
    reasoning_tokens: list[int]
    tools_streamed: bool


_Segment = tuple[str | None, str | None, str, bool]  # channel, recipient, text, completes


def _is_reasoning(token: int, channel: str | None, recipient: str | None) -> bool:
    on_channel = channel == "analysis" or (channel == "commentary" and recipient is not None)
    return on_channel and token not in engine.SPECIAL_TEXT


def _flush(
    parser: engine.HarmonyState, pending: list[int], text_of: engine.Generation
) -> list[_Segment]:
    """``HarmonyParser.flush``: the message being written completes; a cut header comes back
    as final content of its raw token texts (specials included, as ``decode`` gives them)."""
    if parser.state == "content":
        return [(None, None, "", True)]
    if parser.state == "header" and (parser.header or parser.next_role is None):
        return [("final", None, "".join(text_of.text_of(t) for t in pending), False)]
    return []


def _combine(
    segments: Sequence[_Segment], prev_recipient: str | None, next_index: int, tool_parser: bool
) -> tuple[str, str, tuple[int, str | None, str] | None, int]:
    """``parse_delta``'s loop: the content, the reasoning, the tool call and the next index."""
    content = reasoning = ""
    tool: tuple[int, str | None, str] | None = None
    for channel, recipient, text, completes in segments:
        if completes:
            prev_recipient = None
        elif recipient and recipient.startswith("functions."):
            if not tool_parser:
                continue
            if prev_recipient != recipient:
                tool = (next_index, recipient.split("functions.", 1)[1], text)
                next_index += 1
                prev_recipient = recipient
            elif text:
                tool = (tool[0], tool[1], tool[2] + text) if tool else (next_index - 1, None, text)
        elif channel == "analysis":
            reasoning += text
        elif channel == "final" or (channel == "commentary" and recipient is None):
            content += text
    return content, reasoning, tool, next_index


def _delta(
    content: str, reasoning: str, tool: tuple[int, str | None, str] | None, include: bool
) -> Delta033 | None:
    if not (content or reasoning or tool):
        return None
    if not include:
        if not (content or tool):
            return None
        return Delta033(content or None, None, True, tool)
    return Delta033(content or None, reasoning or None, False, tool)


def plan_stream(
    generation: engine.Generation,
    output_sizes: Sequence[int],
    *,
    include_reasoning: bool = True,
    tool_parser: bool = True,
) -> StreamPlan033:
    """The delta of each engine output and the running reasoning-token count."""
    parser = engine.HarmonyState(generation.text_of)
    deltas: list[Delta033 | None] = []
    counts: list[int] = []
    pending: list[int] = []  # tokens since the last completed message (flush's recovery)
    pos = next_index = reasoning_tokens = 0
    tools_streamed = False
    last = len(output_sizes) - 1
    for number, size in enumerate(output_sizes):
        prev_recipient = parser.current_recipient
        segments: list[_Segment] = []
        for token in generation.tokens[pos : pos + size]:
            was_content = parser.state == "content"
            parser.process(token)
            completes = was_content and parser.state != "content"
            if completes:
                pending.clear()
            else:
                pending.append(token)
            channel, recipient = parser.current_channel, parser.current_recipient
            reasoning_tokens += _is_reasoning(token, channel, recipient)
            delta = "" if completes else (parser.last_delta or "")
            segments.append((channel, recipient, delta, completes))
        pos += size
        if number == last:
            segments += _flush(parser, pending, generation)
        content, reasoning, tool, next_index = _combine(
            segments, prev_recipient, next_index, tool_parser
        )
        tools_streamed = tools_streamed or tool is not None
        deltas.append(_delta(content, reasoning, tool, include_reasoning))
        counts.append(reasoning_tokens)
    return StreamPlan033(deltas, counts, tools_streamed)


_Done = list[tuple[str | None, str | None, str]]  # completed messages: channel, recipient, text


def _messages(generation: engine.Generation) -> _Done:
    """Every message of the output, the one being written completed by the end (a cut header
    becomes final content of its raw token texts, as ``flush`` recovers it)."""
    parser = engine.HarmonyState(generation.text_of)
    done: _Done = []
    pending: list[int] = []
    current = ""
    for token in generation.tokens:
        was_content = parser.state == "content"
        parser.process(token)
        if was_content and parser.state != "content":
            done.append((parser.channel, parser.recipient, current))
            current, pending = "", []
            continue
        pending.append(token)
        if parser.state == "content" and was_content:
            current += parser.last_delta or ""
    if parser.state == "content":
        done.append((parser.channel, parser.recipient, current))
    elif parser.state == "header" and (parser.header or parser.next_role is None):
        done.append(("final", None, "".join(generation.text_of(t) for t in pending)))
    return done


def _arguments(text: str) -> str:
    """JSON arguments as ``json.dumps`` re-serialises them (others as they are)."""
    import json

    try:
        return json.dumps(json.loads(text))
    except json.JSONDecodeError:
        return text


def final_message(
    generation: engine.Generation, *, tool_parser: bool, include_reasoning: bool = True
) -> engine.FinalMessage:
    """``HarmonyParser.parse`` for the non-streamed reply: reasoning from ``analysis``, content
    from ``final`` and recipient-less ``commentary``, tool calls only with the tool parser."""
    reasoning, content, calls = [], [], []
    for channel, recipient, text in _messages(generation):
        if recipient and recipient.startswith("functions."):
            if tool_parser:
                calls.append((recipient.split("functions.", 1)[1], _arguments(text)))
        elif channel == "analysis" and text:
            reasoning.append(text)
        elif (channel == "final" or (channel == "commentary" and not recipient)) and text:
            content.append(text)
    return engine.FinalMessage(
        content="\n".join(content) or None,
        reasoning=("\n".join(reasoning) or None) if include_reasoning else None,
        tool_calls=calls,
        finish_reason=generation.finish_reason,
    )
