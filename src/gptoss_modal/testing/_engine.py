"""The mock's pretend engine: what gpt-oss would generate, in which engine steps, sent when.

Pure and deterministic: no I/O, no clock. Three jobs, each a transcription of vLLM 0.13.0:

1. ``plan_generation``: the harmony token sequence a gpt-oss model generates for a request
   (``<|channel|>analysis<|message|>`` reasoning ``<|end|><|start|>assistant<|channel|>final
   <|message|>`` content ``<|return|>``, or a ``commentary to=functions.NAME`` tool call ending
   in ``<|call|>``), over a fake tokenizer: one token per word piece of a seeded vocabulary,
   the harmony special tokens with their real ids. Token counts in usage are counts of these.
2. ``engine_steps`` and ``batch_outputs``: how many tokens each engine step yields (one, or
   1 + accepted drafts with speculative decoding) and which steps produce an output under
   ``--stream-interval N`` (``vllm/v1/engine/output_processor.py``,
   ``RequestState.make_request_output``: the first token at once, then whenever at least N
   tokens are unsent, and whatever is left when the request finishes).
3. ``harmony_deltas``: the delta ``serving_chat.py`` builds for each output in its harmony
   branch: the token texts of the whole output are concatenated and labelled by the channel the
   parser is in *after* the output's last token. So in 0.13.0, an output that crosses a channel
   boundary is labelled by where it ends, and an output that ends outside a message (after
   ``<|end|>`` or ``<|return|>``) is dropped (vLLM issues #30099, #30204; fixed after 0.13.0).
   The mock reproduces this because clients and benchmarks meet it in real deployments.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.testing import _agent as agent
from gptoss_modal.testing._agent import choose_tool as choose_tool  # the engine's rule too

# Harmony's special tokens, with their ids in o200k_harmony.
RETURN = 200002
CONSTRAIN = 200003
CHANNEL = 200005
START = 200006
END = 200007
MESSAGE = 200008
CALL = 200012
SPECIAL_TEXT = {
    RETURN: "<|return|>",
    CONSTRAIN: "<|constrain|>",
    CHANNEL: "<|channel|>",
    START: "<|start|>",
    END: "<|end|>",
    MESSAGE: "<|message|>",
    CALL: "<|call|>",
}
_STOP_TOKENS = frozenset({RETURN, END, CALL})

# Ordinary tokens: the harmony header words, then the word vocabulary.
_HEADER_WORDS = ("analysis", "final", "assistant", "commentary", "json", " ", " to")
_VOCABULARY_TEXT = (
    "the a an and or but so then if when while because this that these those it its we you "
    "they he she one two three four five many few more most some any each every all no not "
    "is are was were be been being have has had do does did can could will would should may "
    "might must shall model server stream token tokens chunk chunks request response answer "
    "question user reply text words sentence reason reasoning think plan check step steps first "
    "next last final short long fast slow quick simple clear exact small large good better best "
    "mock vllm gpt oss latency throughput interval batch engine decode prefill cache memory gpu "
    "modal cloud deploy client benchmark measure time second seconds milli per rate count value "
    "data event line field message content channel analysis tool call function argument result "
    "ready healthy start end begin continue finish stop length usage prompt output input about "
    "with without into from over under between through after before during around near far "
    "here there now today again also only just very well still even already often always "
    "never sometimes usually perhaps likely clearly quite really simply mostly nearly roughly"
)
_VOCABULARY = tuple(_VOCABULARY_TEXT.split(" "))
_FIRST_WORD_ID = 1000
_WORD_IDS = {w: _FIRST_WORD_ID + i for i, w in enumerate(_HEADER_WORDS + _VOCABULARY)}
_FREE_ID_START = 150_000  # ids for pieces outside the vocabulary, assigned per request

REASONING_TOKENS = {"low": 24, "medium": 96, "high": 384}
"""Reasoning length (tokens of text) per ``reasoning_effort``; no effort means medium."""

# The fake tokenizer's unit for prompts and argument JSON: words, runs of spaces, punctuation.
_PIECE = re.compile(r" ?\w+|\s+|[^\w\s]")


def split_pieces(text: str) -> list[str]:
    """Text as the fake tokenizer's pieces; ``"".join(split_pieces(t)) == t``."""
    return _PIECE.findall(text)


def count_text_tokens(text: str) -> int:
    """How many tokens the fake tokenizer makes of ``text``."""
    return len(_PIECE.findall(text))


PROMPT_OVERHEAD_TOKENS = 64  # the harmony system message vLLM renders before the conversation
MESSAGE_OVERHEAD_TOKENS = 4  # <|start|>role<|message|> ... <|end|>
TOOL_OVERHEAD_TOKENS = 16  # the developer message's tool namespace preamble, per tool


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def count_prompt_tokens(messages: Sequence[dict[str, Any]], tools: Sequence[Any] = ()) -> int:
    """The prompt's token count: a deterministic function of the messages and tools.

    Not gpt-oss's tokenizer: a fixed preamble, four tokens per message and the fake tokenizer's
    count of each message's text (and of each tool's JSON).
    """
    total = PROMPT_OVERHEAD_TOKENS
    for message in messages:
        total += MESSAGE_OVERHEAD_TOKENS + count_text_tokens(_content_text(message.get("content")))
    for tool in tools:
        total += TOOL_OVERHEAD_TOKENS + count_text_tokens(repr(tool))
    return total


@dataclass
class Generation:
    """The tokens a request generates, with the text of each, and how it finishes."""

    tokens: list[int]
    texts: dict[int, str]
    finish_reason: str  # "stop" or "length"
    stop_reason: int | None
    tool_name: str | None = None
    tool_arguments: str | None = None
    reasoning: str = ""
    content: str = ""
    tool_fault: str | None = None  # the injected tool-call fault (``_tool_faults``), if any
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    """Free for a server to keep what it derived from this generation (serialised deltas)."""

    def __post_init__(self) -> None:
        self._all_texts = {**self.texts, **SPECIAL_TEXT}

    def text_of(self, token: int) -> str:
        return self._all_texts[token]


@dataclass
class _Tokens:
    """A growing token list with the text of each non-special token."""

    ids: list[int] = field(default_factory=list)
    texts: dict[int, str] = field(default_factory=dict)
    _free: dict[str, int] = field(default_factory=dict)

    def special(self, *tokens: int) -> None:
        self.ids.extend(tokens)

    def piece(self, text: str) -> None:
        token = _WORD_IDS.get(text.strip()) if text.strip() == text else None
        if token is None and text.startswith(" ") and text[1:] in _WORD_IDS:
            token = _WORD_IDS[text[1:]] + 100_000  # the " word" variant of a word
        if token is None:
            token = self._free.setdefault(text, _FREE_ID_START + len(self._free))
        self.texts[token] = text
        self.ids.append(token)

    def pieces(self, pieces: Iterable[str]) -> None:
        for p in pieces:
            self.piece(p)


def _words(rng: random.Random, count: int, opening: str = "") -> list[str]:
    """``count`` token texts of sentence-like text from the vocabulary."""
    out = split_pieces(opening)[:count]
    sentence, length = 0, rng.randint(6, 14)
    while len(out) < count:
        word = rng.choice(_VOCABULARY)
        if sentence == 0:
            word = word.capitalize()
        out.append(word if not out else " " + word)
        sentence += 1
        if sentence >= length and len(out) < count:
            out.append(".")
            sentence, length = 0, rng.randint(6, 14)
    return out


def request_seed(server_seed: int, request_seed_: int | None, messages: Any) -> int:
    """The RNG seed of one request: its own ``seed``, else the server's seed and the messages."""
    if request_seed_ is not None:
        return request_seed_
    import zlib

    return zlib.crc32(repr((server_seed, messages)).encode()) ^ server_seed


def plan_generation(
    *,
    messages: Sequence[dict[str, Any]],
    seed: int,
    reasoning_effort: str | None,
    content_tokens: int,
    max_tokens: int,
    ignore_eos: bool,
    tools: Sequence[dict[str, Any]] = (),
    tool_choice: Any = None,
    reasoning_tokens: dict[str, int] | None = None,
    tool_fault: str | None = None,
) -> Generation:
    """The harmony tokens gpt-oss generates for a request, cut at ``max_tokens``.

    ``ignore_eos`` makes the content run on to ``max_tokens`` (a fixed-length output, as load
    benchmarks want; note that real gpt-oss on vLLM 0.13.0 still stops at ``<|return|>``,
    which vLLM adds to ``stop_token_ids`` for harmony models).
    """
    rng = random.Random(seed)  # noqa: S311 - a seeded workload, not cryptography
    prompt = _content_text(messages[-1].get("content")) if messages else ""
    efforts = reasoning_tokens or REASONING_TOKENS
    n_reason = efforts.get(reasoning_effort or "medium", efforts["medium"])
    question = " ".join(prompt.split()[:12]).rstrip(".?!")
    opening = f"The user asks: {question}." if question else ""
    reasoning = _words(rng, n_reason, opening)

    toks = _Tokens()
    toks.special(CHANNEL)
    toks.piece("analysis")
    toks.special(MESSAGE)
    toks.pieces(reasoning)
    toks.special(END, START)
    toks.piece("assistant")
    toks.special(CHANNEL)

    tool = choose_tool(tools, tool_choice, prompt, agent.last_role(messages))
    tool_name = arguments = None
    content: list[str] = []
    if tool is not None and tool_fault != "content-leak":
        tool_name = str((tool.get("function") or {}).get("name"))
        arguments = agent.tool_arguments(tool, prompt)
        tool_name, arguments, cap = _write_tool_call(toks, tool_name, arguments, tool_fault)
        max_tokens = min(max_tokens, cap)
        end_token = CALL
    else:
        toks.piece("final")
        toks.special(MESSAGE)
        room = max_tokens - len(toks.ids) if ignore_eos else content_tokens
        leak = _leaked_call(tool, prompt) if tool is not None else []
        answer = agent.answer_opening(messages, prompt)
        content = leak + _words(rng, max(room - len(leak), 1), answer)
        toks.pieces(content)
        end_token = RETURN

    finish, stop_reason = "stop", (CALL if end_token == CALL else None)
    if ignore_eos and end_token == RETURN:
        finish, stop_reason = "length", None
    else:
        toks.special(end_token)
    if len(toks.ids) >= max_tokens:
        # vLLM checks EOS and stop tokens before the length cap.
        last = toks.ids[max_tokens - 1]
        if not (last in (RETURN, CALL) and len(toks.ids) == max_tokens):
            finish, stop_reason = "length", None
        del toks.ids[max_tokens:]
    return Generation(
        tokens=toks.ids,
        texts=toks.texts,
        finish_reason=finish,
        stop_reason=stop_reason,
        tool_name=tool_name,
        tool_arguments=arguments,
        reasoning="".join(reasoning),
        content="".join(content),
        tool_fault=tool_fault,
    )


def _write_tool_call(
    toks: _Tokens, name: str, arguments: str, fault: str | None
) -> tuple[str, str, int]:
    """A call's header, arguments and ``<|call|>``, broken as ``fault`` says; the name and
    arguments a client receives, and the token count the output is capped at (a cut)."""
    toks.piece("commentary")
    toks.piece(" to")
    toks.pieces(split_pieces("=functions." + name))
    if fault == "name-leak":  # the channel marker lands in the recipient (vllm#32587)
        toks.special(CHANNEL)
        toks.piece("commentary")
        name += SPECIAL_TEXT[CHANNEL] + "commentary"
    toks.piece(" ")
    toks.special(CONSTRAIN)
    toks.piece("json")
    toks.special(MESSAGE)
    pieces = split_pieces(arguments)
    cap = len(toks.ids) + len(pieces) + 1
    if fault == "args-short":  # the call ends early with "tool_calls": cut JSON (vllm#30204)
        pieces = pieces[: max(1, len(pieces) // 2)]
        arguments = "".join(pieces)
    elif fault == "args-length":  # max_tokens strikes inside the arguments
        cap = len(toks.ids) + max(1, len(pieces) // 2)
    toks.pieces(pieces)
    return name, arguments, cap


def _leaked_call(tool: dict[str, Any], prompt: str) -> list[str]:
    """A tool call written as final text with its harmony markup (the ``content-leak`` fault)."""
    name = str((tool.get("function") or {}).get("name"))
    text = f"to=functions.{name} <|constrain|>json{agent.tool_arguments(tool, prompt)} "
    return split_pieces(text)


# --- engine steps, speculative decoding and stream-interval batching -------------------------


class DraftAcceptance:
    """Deterministic speculative-decoding acceptance with an exact long-run rate.

    Every decode step verifies ``num_speculative_tokens`` (k) drafts. Steps are numbered across
    the whole server; after a total of D draft tokens, exactly ``floor(D * rate)`` have been
    accepted (a Bresenham sequence over exact fractions). So the ``/metrics`` counters always
    satisfy ``accepted == floor(rate * draft_tokens)``: Δaccepted/Δdraft over any window equals
    the rate to within 1/Δdraft, and exactly when the window's draft count is a multiple of the
    rate's denominator. Accepted drafts are a prefix of the step's drafts, as in vLLM.
    """

    def __init__(self, num_speculative_tokens: int, rate: float) -> None:
        if num_speculative_tokens < 0:
            raise ConfigError("num_speculative_tokens", num_speculative_tokens, ">= 0")
        if not 0.0 <= rate <= 1.0:
            raise ConfigError("spec_acceptance_rate", rate, "within [0, 1]")
        self.k = num_speculative_tokens
        self.rate = Fraction(rate).limit_denominator(10_000)
        self.draft_tokens = 0

    def next_step(self) -> int:
        """Accepted drafts of the next step (0..k)."""
        before = self.draft_tokens
        self.draft_tokens += self.k
        return int(self.draft_tokens * self.rate) - int(before * self.rate)


@dataclass(frozen=True)
class Step:
    """One engine step of a request: the tokens it yields and the drafts it verified."""

    tokens: int
    accepted: int = 0  # accepted drafts (tokens = accepted + 1 unless the request ended)
    drafted: int = 0  # draft tokens verified (k with speculative decoding, else 0)


_ONE_TOKEN = Step(tokens=1)


def engine_steps(num_tokens: int, acceptance: DraftAcceptance | None = None) -> list[Step]:
    """The engine steps that yield ``num_tokens`` tokens: the prefill step yields one token,
    each decode step one plus its accepted drafts (the last step may be cut short by the end)."""
    if num_tokens <= 0:
        return []
    if acceptance is None or acceptance.k == 0:
        return [_ONE_TOKEN] * num_tokens
    steps = [_ONE_TOKEN]
    left = num_tokens - 1
    while left > 0:
        accepted = acceptance.next_step()
        made = min(accepted + 1, left)
        steps.append(Step(tokens=made, accepted=accepted, drafted=acceptance.k))
        left -= made
    return steps


def batch_outputs(step_tokens: Sequence[int], stream_interval: int) -> list[tuple[int, int]]:
    """Which steps send an output under ``--stream-interval``, as ``(step_index, tokens)``.

    vLLM 0.13.0's rule (``RequestState.make_request_output``): with an interval of 1 every step
    sends its tokens; otherwise a step sends when the request finished, when nothing was sent
    yet, or when at least ``stream_interval`` tokens are unsent; it sends all unsent tokens.
    """
    out: list[tuple[int, int]] = []
    produced = sent = 0
    last = len(step_tokens) - 1
    for i, n in enumerate(step_tokens):
        produced += n
        if stream_interval <= 1:
            out.append((i, n))
            sent = produced
        elif i == last or sent == 0 or produced - sent >= stream_interval:
            out.append((i, produced - sent))
            sent = produced
    return out


def step_times(
    steps: Sequence[Step], ttft_s: float, itl_s: float, jitter_s: float, rng: random.Random
) -> list[float]:
    """When each step's tokens are ready, in seconds after the request arrived.

    The prefill step ends at ``ttft_s``; a decode step yielding m tokens takes m * ``itl_s``
    (so the time per output token is ``itl_s`` with or without speculative decoding), plus a
    uniform jitter in ±``jitter_s`` per step, never going back in time.
    """
    times: list[float] = []
    now = 0.0
    for i, step in enumerate(steps):
        base = ttft_s if i == 0 else step.tokens * itl_s
        jitter = rng.uniform(-jitter_s, jitter_s) if jitter_s > 0 else 0.0
        now += max(0.0, base + jitter)
        times.append(now)
    return times


# --- the harmony branch of serving_chat.py -------------------------------------------------


@dataclass(frozen=True)
class Delta:
    """What one output puts in its chunk's delta (``kind`` None: no chunk unless finishing).

    ``kind`` is ``"reasoning"``, ``"content"``, ``"tool_start"`` (id, name, empty arguments),
    ``"tool_args"`` or None; ``text`` is the text (or the tool name for ``tool_start``);
    ``index`` the tool call's index.
    """

    kind: str | None
    text: str = ""
    index: int = 0


class HarmonyState:
    """openai-harmony's StreamableParser (strict), reduced to what serving_chat.py reads."""

    def __init__(self, text_of: Any) -> None:
        self._text_of = text_of
        self.state = "header"
        self.next_role: str | None = "assistant"
        self.header: list[int] = []
        self.channel: str | None = None
        self.recipient: str | None = None
        self.completed_tool_calls = 0
        self.last_delta: str | None = None

    def _parse_header(self) -> None:
        text = "".join(self._text_of(t) for t in self.header)
        channel = None
        marker = SPECIAL_TEXT[CHANNEL]
        if marker in text:
            at = text.index(marker)
            after = text[at + len(marker) :]
            end = next((i for i, c in enumerate(after) if c.isspace() or c == "<"), len(after))
            channel, text = after[:end], text[:at] + after[end:]
        parts = text.replace(SPECIAL_TEXT[CONSTRAIN], " " + SPECIAL_TEXT[CONSTRAIN]).split()
        role = self.next_role or (parts[0] if parts else None)
        if parts and parts[0] == role:
            parts.pop(0)
        recipient = None
        for part in parts:
            if part.startswith("to="):
                recipient = part[3:]
        self.channel, self.recipient = channel, recipient

    def process(self, token: int) -> None:
        if self.state == "expect_start":
            self.state = "header"
            self.header = []
        elif self.state == "header":
            if token == MESSAGE:
                self._parse_header()
                self.next_role = None
                self.state = "content"
            else:
                self.header.append(token)
        elif token in _STOP_TOKENS:
            if self.channel == "commentary" and (self.recipient or "").startswith("functions."):
                self.completed_tool_calls += 1
            self.state = "expect_start"
            self.last_delta = None
        else:
            self.last_delta = self._text_of(token)

    @property
    def current_channel(self) -> str | None:
        return self.channel if self.state == "content" else None

    @property
    def current_recipient(self) -> str | None:
        return self.recipient if self.state == "content" else None


def harmony_deltas(
    generation: Generation, output_sizes: Sequence[int], include_reasoning: bool = True
) -> list[Delta]:
    """The delta of each output, as vLLM 0.13.0's harmony streaming branch builds it."""
    parser = HarmonyState(generation.text_of)
    deltas: list[Delta] = []
    pos = 0
    for size in output_sizes:
        prev_recipient = parser.current_recipient
        text = ""
        for token in generation.tokens[pos : pos + size]:
            parser.process(token)
            text += parser.last_delta or ""
        pos += size
        channel, recipient = parser.current_channel, parser.current_recipient
        if channel == "final":
            deltas.append(Delta("content", text))
        elif channel == "analysis":
            deltas.append(Delta("reasoning", text) if include_reasoning else Delta(None))
        elif channel == "commentary" and recipient and recipient.startswith("functions."):
            index = parser.completed_tool_calls
            if prev_recipient != recipient:
                deltas.append(Delta("tool_start", recipient.split("functions.", 1)[1], index))
            elif text:
                deltas.append(Delta("tool_args", text, index))
            else:
                deltas.append(Delta(None))
        elif channel == "commentary":
            deltas.append(Delta("content", text))
        else:
            deltas.append(Delta(None))
    return deltas


# --- the non-streamed reply (chat_completion_full_generator's harmony branch) -------------


@dataclass(frozen=True)
class FinalMessage:
    """The message of a non-streamed reply, as vLLM 0.13.0 assembles it from the tokens."""

    content: str | None
    reasoning: str | None
    tool_calls: list[tuple[str, str]]  # (name, arguments)
    finish_reason: str


_Message = tuple[str | None, str | None, str]  # a completed message: channel, recipient, text


def _tool_parser_output(done: Sequence[_Message]) -> tuple[str | None, list[tuple[str, str]]]:
    """``--tool-call-parser openai``'s ``extract_tool_calls``: the content and the calls."""
    import json

    calls: list[tuple[str, str]] = []
    final_content = commentary = None
    for channel, recipient, text in done:
        if recipient and recipient.startswith("functions."):
            try:
                arguments = json.dumps(json.loads(text))
            except json.JSONDecodeError:
                arguments = text
            calls.append((recipient.split("functions.", 1)[1], arguments))
        elif channel == "final":
            final_content = text
        elif channel == "commentary" and not recipient:
            commentary = text
    return final_content or commentary, calls


def final_message(
    generation: Generation, *, tool_parser: bool, include_reasoning: bool = True
) -> FinalMessage:
    """``parse_chat_output`` for the reasoning, and with ``--tool-call-parser openai`` the
    tool parser's ``extract_tool_calls`` for content and calls (completed messages only; the
    arguments re-serialised by ``json.dumps``, so with spaces)."""
    done: list[_Message] = []
    parser = HarmonyState(generation.text_of)
    current = ""
    for token in generation.tokens:
        was_content = parser.state == "content"
        parser.process(token)
        if was_content and parser.state != "content":
            done.append((parser.channel, parser.recipient, current))
            current = ""
        elif parser.state == "content" and was_content:
            current += parser.last_delta or ""
    reasoning_texts = [t for ch, _, t in done if ch == "analysis"]
    final_texts = [t for ch, _, t in done if ch != "analysis"]
    if parser.state == "content" and current:
        (reasoning_texts if parser.channel == "analysis" else final_texts).append(current)
    reasoning = "\n".join(reasoning_texts) or None
    content = "\n".join(final_texts) or None
    calls: list[tuple[str, str]] = []
    if tool_parser:
        content, calls = _tool_parser_output(done)
    finish = "tool_calls" if calls else generation.finish_reason
    return FinalMessage(
        content=content,
        reasoning=reasoning if include_reasoning else None,
        tool_calls=calls,
        finish_reason=finish,
    )
