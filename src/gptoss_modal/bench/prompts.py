"""The benchmark's prompts: seeded synthetic ones of a given length, or a dataset file (JSONL
chats or prompts, ShareGPT).

Request ``i`` of level ``n`` gets its own prompt (so a prefix cache cannot serve one request
from another's), and the same seed gives the same prompts.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.bench.settings import BenchSettings, Messages

__all__ = [
    "FORMATS",
    "ROLES",
    "SHAREGPT_ROLES",
    "Dataset",
    "PromptSet",
    "load_dataset",
    "load_prompts",
    "synthetic_messages",
]

ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool"})

# Common English words that are each one token (with their leading space) in gpt-oss's o200k
# vocabulary, as in the mock's tokenizer; a prompt of N of them is about N tokens.
_WORD_TEXT: Final = """
    time year people way day man thing woman life child world school state family student
    group country problem hand part place case week company system program question work
    government number night point home water room mother area money story fact month lot right
    study book eye job word business issue side kind head house service friend father power hour
    game line end member law car city name team minute idea kid body back parent face others
    level office door health person art war history party result change morning reason research
    girl guy moment air teacher force education foot boy age policy music market sense nation
    plan college interest death experience effect use class control care field development role
    effort rate heart drug show leader light voice wife police mind price report decision son
    view relationship town road arm difference value building action model season society tax
    director position player record paper space ground form event official matter center couple
    site project activity star table need court oil situation cost industry figure street image
    phone data picture practice piece land product doctor wall patient worker news test movie
    north love support technology step baby computer type attention film tree source organization
    hair window evidence population truth"""
_WORDS: Final = tuple(_WORD_TEXT.split())
_INSTRUCTION: Final = "Write a long story that uses these words in order:"


def synthetic_messages(rng: random.Random, words: int) -> list[dict[str, str]]:
    """One user message: an instruction and ``words`` words drawn from ``rng``."""
    text = _INSTRUCTION + "".join(" " + rng.choice(_WORDS) for _ in range(max(1, words)))
    return [{"role": "user", "content": text}]


def _content_ok(content: object) -> bool:
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in content
    )


def _check_message(place: str, message: object) -> None:
    """One chat message of a prompts file: a role we know and text content."""
    if not isinstance(message, dict):
        raise ConfigError(place, message, 'an object with "role" and "content"')
    if message.get("role") not in ROLES:
        raise ConfigError(f"{place}.role", message.get("role"), f"one of {sorted(ROLES)}")
    if not _content_ok(message.get("content")):
        raise ConfigError(
            f"{place}.content",
            message.get("content"),
            'a string, or a list of {"type": "text", "text": ...} parts',
        )


# ShareGPT's speakers, as the chat roles they are (vLLM's ShareGPT loader reads the same files).
SHAREGPT_ROLES: Final = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "assistant": "assistant",
    "system": "system",
}
FORMATS: Final = ("jsonl", "sharegpt")
_LINE_SHAPES: Final = (
    'an object with "messages": [{"role", "content"}], "prompt": "text", or ShareGPT '
    '"conversations": [{"from", "value"}]'
)


@dataclass(frozen=True)
class Dataset:
    """The prompts of a file, its format (``jsonl`` or ``sharegpt``), and how many ShareGPT
    entries had no user turn to send (skipped, as ``vllm bench serve`` does, and counted)."""

    prompts: tuple[Messages, ...]
    format: str
    skipped: int = 0


def _chat_line(at: str, obj: dict[str, Any]) -> Messages:
    messages = obj["messages"]
    if not isinstance(messages, list) or not messages:
        raise ConfigError(f"{at}.messages", messages, "a non-empty list of chat messages")
    for i, message in enumerate(messages):
        _check_message(f"{at}.messages[{i}]", message)
    return tuple(messages)


def _sharegpt(at: str, obj: dict[str, Any]) -> Messages | None:
    """A ShareGPT conversation's first request: any system turn and the first user turn
    (``None`` when it has no user turn), as vLLM's ShareGPT dataset sends it."""
    turns = obj.get("conversations")
    if not isinstance(turns, list):
        raise ConfigError(f"{at}.conversations", turns, 'a list of {"from", "value"} turns')
    messages: list[dict[str, str]] = []
    for i, turn in enumerate(turns):
        role = SHAREGPT_ROLES.get(str(turn.get("from"))) if isinstance(turn, dict) else None
        if role is None or not isinstance(turn.get("value"), str):
            got = turn.get("from") if isinstance(turn, dict) else turn
            raise ConfigError(
                f"{at}.conversations[{i}]",
                got,
                f'"from" one of {sorted(SHAREGPT_ROLES)} and a "value"',
            )
        if role == "system" or role == "user":
            messages.append({"role": role, "content": turn["value"]})
        if role == "user":
            return tuple(messages) if turn["value"].strip() else None
    return None


def _parse_entry(at: str, obj: object) -> Messages | None:
    """One request of a dataset (``None``: a ShareGPT entry with nothing to send)."""
    if isinstance(obj, dict) and "messages" in obj:
        return _chat_line(at, obj)
    if isinstance(obj, dict) and "prompt" in obj:
        prompt = obj["prompt"]
        if not isinstance(prompt, str) or not prompt:
            raise ConfigError(f"{at}.prompt", prompt, "a non-empty string")
        return ({"role": "user", "content": prompt},)
    if isinstance(obj, dict) and "conversations" in obj:
        return _sharegpt(at, obj)
    raise ConfigError(at, str(obj)[:80], _LINE_SHAPES)


def _parse_line(at: str, line: str) -> Messages | None:
    """One line of a JSONL prompts file; ``at`` is ``file:line``."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(at, line[:80], f"one JSON object per line ({exc.msg})") from exc
    return _parse_entry(at, obj)


def _json_array(text: str) -> list[Any] | None:
    """The file as a JSON array of objects (ShareGPT's layout), or ``None``: read it as JSONL."""
    if not text.lstrip().startswith("["):
        return None
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
        return items
    return None


def _entries(where: str, text: str) -> tuple[list[Messages | None], str]:
    """Every entry of a file: a JSON array (ShareGPT's layout) or JSONL, and the format."""
    items = _json_array(text)
    if items is not None:
        entries = [_parse_entry(f"{where}[{i}]", item) for i, item in enumerate(items)]
    else:
        entries = [
            _parse_line(f"{where}:{number}", line)
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip()
        ]
    sharegpt = '"conversations"' in text[:4096]
    return entries, "sharegpt" if sharegpt else "jsonl"


def load_dataset(path: str | Path) -> Dataset:
    """Prompts from a file: JSONL with one ``{"messages": [...]}`` (a conversation),
    ``{"prompt": "..."}`` (a request, as vLLM's custom dataset) or ShareGPT
    ``{"conversations": [...]}`` per line, or a ShareGPT JSON array. Anything else raises
    :class:`ConfigError` naming the line and field (``prompts.jsonl:3.messages[0].role``)."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--prompts", where, f"a readable UTF-8 JSONL file ({exc})") from exc
    entries, kind = _entries(where, text)
    prompts = tuple(entry for entry in entries if entry is not None)
    if not prompts:
        raise ConfigError("--prompts", where, "a JSONL file with at least one prompt")
    return Dataset(prompts, kind, skipped=len(entries) - len(prompts))


def load_prompts(path: str | Path) -> tuple[Messages, ...]:
    """The prompts of :func:`load_dataset` (chat conversations, each a request)."""
    return load_dataset(path).prompts


class PromptSet:
    """The prompt of request ``i`` of level ``n``: the same for the same seed, different across
    requests and levels (so a prefix cache cannot serve one request from another's prompt)."""

    def __init__(self, settings: BenchSettings) -> None:
        self.settings = settings
        self.words = settings.input_tokens
        self._orders: dict[int, list[int]] = {}

    def calibrate(self, template_tokens: int) -> None:
        """Subtract the tokens the server adds around the words (template and instruction)."""
        self.words = max(1, self.settings.input_tokens - template_tokens)

    def probe(self) -> Sequence[Mapping[str, Any]]:
        """The probe request's prompt: synthetic at the requested length, or the file's first."""
        if self.settings.prompts is not None:
            return self.settings.prompts[0]
        rng = random.Random(f"{self.settings.seed}:probe")  # noqa: S311 - workload
        return synthetic_messages(rng, self.settings.input_tokens)

    def messages(self, level: int, index: int) -> Sequence[Mapping[str, Any]]:
        """Request ``index`` of level ``level`` (warm-up requests use negative levels)."""
        prompts = self.settings.prompts
        if prompts is None:
            rng = random.Random(f"{self.settings.seed}:{level}:{index}")  # noqa: S311 - workload
            return synthetic_messages(rng, self.words)
        order = self._orders.get(level)
        if order is None:
            order = list(range(len(prompts)))
            random.Random(f"{self.settings.seed}:order:{level}").shuffle(order)  # noqa: S311
            self._orders[level] = order
        return prompts[order[index % len(order)]]
