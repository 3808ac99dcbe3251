"""The load benchmark's driver: requests on the streaming client, in levels of load.

``await run_benchmark(settings)`` runs, against one OpenAI-compatible server:

1. a wait for ``/health`` (through a cold start), then one *probe* request that is not counted:
   it fails the run at once when every request would fail the same way (a wrong key, model or
   URL), tells whether the server accepts fixed output lengths (``ignore_eos`` and
   ``min_tokens``), and measures the chat template's overhead so that synthetic prompts have
   the requested length as the server counts it;
2. per level (a concurrency, or a Poisson arrival rate): a warm-up that is not counted (one
   short request per slot, so connections and the server are warm), a scrape of ``/metrics``,
   the measured requests, and another scrape;
3. the statistics of :mod:`gptoss_modal.bench.stats` per level, spec-decode acceptance from the
   scrapes (:mod:`gptoss_modal.bench.prometheus`), and the budgets of the level when given.

Closed loop: ``concurrency`` workers each send their next request when the last one ends.
Open loop: requests are scheduled at Poisson arrivals (exponential gaps at ``rate`` per second,
seeded) whatever the server does; with a concurrency cap a request may wait for a slot, and
that wait is its *queue* time. A level ends after ``requests`` requests, or when ``duration_s``
has passed (requests in flight then finish and count).

Every request's chunks are stamped by the client once per network read, before parsing.
Failed requests are recorded with their kind (``http_503``, ``incomplete_stream``, ...) and
message and never dropped. The driver measures the CPU time of its own event-loop thread and
warns when a level used more than :data:`CLIENT_BOUND_FRACTION` of a core: past that,
arrival stamps wait for the loop and latencies are inflated by the client, not the server.
"""

from __future__ import annotations

import asyncio
import builtins
import collections
import contextlib
import datetime
import gc
import json
import math
import random
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, TextIO

from gptoss_modal._exceptions import (
    AuthenticationError,
    BenchmarkError,
    ChunkParseError,
    ConfigError,
    ConnectError,
    ConnectTimeout,
    GptossModalError,
    HTTPStatusError,
    IncompleteStreamError,
    StallTimeout,
    StreamError,
    TimeoutError,
    TransportError,
    UpstreamError,
)
from gptoss_modal.bench.budgets import Budgets
from gptoss_modal.bench.prometheus import (
    MetricsFormatError,
    MetricsSnapshot,
    SpecDecode,
    histogram_mean_between,
    spec_decode_between,
)
from gptoss_modal.bench.stats import (
    CHUNK_CHOICES,
    CHUNK_CONTENT,
    CHUNK_OUTPUT,
    BudgetCheck,
    LevelSummary,
    RequestMetrics,
    StreamTrace,
    evaluate_budgets,
    measured_values,
    request_metrics,
    slo_from_limits,
    summarize_level,
)
from gptoss_modal.stream.accumulator import ChatResult

__all__ = [
    "CLIENT_BOUND_FRACTION",
    "JSON_SCHEMA",
    "AllRequestsFailed",
    "BenchRun",
    "BenchSettings",
    "Level",
    "LevelResult",
    "LiveStats",
    "Progress",
    "RequestRecord",
    "SilentProgress",
    "TerminalProgress",
    "error_kind",
    "load_prompts",
    "parse_duration",
    "parse_levels",
    "run_benchmark",
    "synthetic_messages",
]

JSON_SCHEMA: Final = "gptoss-modal-bench/1"
CLIENT_BOUND_FRACTION: Final = 0.6  # of one core: above it the client distorts what it measures
DEFAULT_REQUESTS_PER_SLOT: Final = 4  # requests per level = 4 x concurrency (at least 8)...
MIN_DEFAULT_REQUESTS: Final = 8
WARMUP_MAX_TOKENS: Final = 16  # warm-up and probe requests are short
PROGRESS_INTERVAL_S: Final = 0.25
LIVE_WINDOW_S: Final = 2.0  # live tokens/s is measured over this trailing window
MAX_HELD_CHUNKS: Final = 2_000_000  # chunks kept for records built after the level (~0.5 GB)
METRICS_TIMEOUT_S: Final = 10.0
ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool"})
# Server-side histograms whose mean over a level is reported beside the client's numbers.
SERVER_HISTOGRAMS: Final = {
    "ttft": "vllm:time_to_first_token_seconds",
    "itl": "vllm:inter_token_latency_seconds",
    "e2e": "vllm:e2e_request_latency_seconds",
    "queue": "vllm:request_queue_time_seconds",
}

# --- settings and their parsing ------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_S: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, field_name: str = "--duration") -> float:
    """Seconds from ``90``, ``90s``, ``1.5m``, ``2h`` or ``500ms``; :class:`ConfigError` if not."""
    match = _DURATION.match(text)
    seconds = float(match.group(1)) * _UNIT_S[match.group(2)] if match else 0.0
    if not match or seconds <= 0:
        raise ConfigError(field_name, text, "a positive duration such as 90, 90s, 1.5m, 2h, 500ms")
    return seconds


@dataclass(frozen=True)
class Level:
    """One load level: ``concurrency`` requests at once (closed loop), or Poisson arrivals at
    ``rate`` requests/s (open loop) with at most ``concurrency`` in flight (``None``: no cap)."""

    concurrency: int | None
    rate: float | None = None

    @property
    def label(self) -> str:
        """``c=8``, ``rate=2.5/s`` or ``rate=2.5/s c<=64``."""
        if self.rate is None:
            return f"c={self.concurrency}"
        cap = f" c<={self.concurrency}" if self.concurrency is not None else ""
        return f"rate={self.rate:g}/s{cap}"

    @property
    def slots(self) -> int:
        """How many requests may be in flight (for warm-up and the connection pool)."""
        if self.concurrency is not None:
            return self.concurrency
        return max(1, math.ceil(self.rate or 1.0))

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "concurrency": self.concurrency, "rate": self.rate}


def _positive_list(text: str, field_name: str, kind: type[int] | type[float]) -> list[Any]:
    what = "whole numbers, e.g. 1,8,32" if kind is int else "numbers, e.g. 0.5,2,8"
    values: list[Any] = []
    for part in text.split(","):
        try:
            value = kind(part.strip())
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value <= 0:
            raise ConfigError(field_name, text, f"comma-separated positive {what}")
        values.append(value)
    return values


def parse_levels(concurrency: str | None, rate: str | None) -> tuple[Level, ...]:
    """Levels from ``--concurrency 1,8,32`` and ``--rate R[,R...]``.

    Without ``--rate`` each concurrency is a closed-loop level (default 1,8,32). With it, each
    rate is an open-loop level capped by the concurrency (no cap when not given); only one of
    the two may list several values.
    """
    if rate is None:
        return tuple(
            Level(c) for c in _positive_list(concurrency or "1,8,32", "--concurrency", int)
        )
    rates = _positive_list(rate, "--rate", float)
    caps: list[int | None] = (
        list(_positive_list(concurrency, "--concurrency", int)) if concurrency else [None]
    )
    if len(rates) > 1 and len(caps) > 1:
        raise ConfigError(
            "--concurrency",
            concurrency,
            "a single cap when --rate lists several rates (levels vary one thing at a time)",
        )
    return tuple(Level(c, r) for c in caps for r in rates)


Messages = tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class BenchSettings:
    """Everything a run needs. ``requests`` and ``duration_s`` are per level (neither: 4 per
    slot, at least 8). ``prompts`` are chat conversations (from a JSONL file); without them
    synthetic prompts of ``input_tokens`` are made from ``seed``. ``warmup`` is the number of
    uncounted requests before each level (``None``: one per slot)."""

    url: str
    model: str | None = "llm"
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    levels: tuple[Level, ...] = (Level(1), Level(8), Level(32))
    requests: int | None = None
    duration_s: float | None = None
    input_tokens: int = 1024
    output_tokens: int = 1024
    fixed_output: bool = True
    reasoning_effort: str | None = "low"
    prompts: tuple[Messages, ...] | None = None
    prompts_source: str | None = None
    seed: int = 0
    warmup: int | None = None
    health_timeout_s: float = 20 * 60.0
    stall_timeout_s: float | None = 120.0
    connect_timeout_s: float | None = 10.0
    scrape_metrics: bool = True

    def __post_init__(self) -> None:
        if not self.levels:
            raise ConfigError("--concurrency", "", "at least one level")
        if self.requests is not None and self.duration_s is not None:
            raise ConfigError("--requests", self.requests, "either --requests or --duration")
        checks: list[tuple[str, float | None, bool]] = [
            ("--requests", self.requests, self.requests is None or self.requests >= 1),
            ("--duration", self.duration_s, self.duration_s is None or self.duration_s > 0),
            ("--input-tokens", self.input_tokens, self.input_tokens >= 1),
            ("--output-tokens", self.output_tokens, self.output_tokens >= 1),
            ("--warmup", self.warmup, self.warmup is None or self.warmup >= 0),
        ]
        for name, value, ok in checks:
            if not ok:
                raise ConfigError(
                    name, value, "a positive number" if name != "--warmup" else ">= 0"
                )
        if self.reasoning_effort not in (None, "low", "medium", "high"):
            raise ConfigError("--reasoning-effort", self.reasoning_effort, "low, medium or high")
        if self.prompts is not None and not self.prompts:
            raise ConfigError("--prompts", self.prompts_source, "a file with at least one prompt")

    def requests_for(self, level: Level) -> int | None:
        """How many measured requests a level sends (``None``: as many as fit the duration)."""
        if self.duration_s is not None:
            return None
        if self.requests is not None:
            return self.requests
        return max(MIN_DEFAULT_REQUESTS, DEFAULT_REQUESTS_PER_SLOT * level.slots)

    def to_json(self) -> dict[str, Any]:
        """The settings as recorded in the JSON output (never the API key or headers)."""
        return {
            "url": self.url,
            "model": self.model,
            "levels": [level.to_json() for level in self.levels],
            "requests": self.requests,
            "duration_s": self.duration_s,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "fixed_output": self.fixed_output,
            "reasoning_effort": self.reasoning_effort,
            "prompts": self.prompts_source,
            "seed": self.seed,
            "warmup": self.warmup,
            "api_key": "set" if self.api_key else None,
        }


# --- prompts -------------------------------------------------------------------------------------

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


def _content_ok(content: Any) -> bool:
    if isinstance(content, str):
        return True
    return isinstance(content, list) and all(
        isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        for part in content
    )


def load_prompts(path: str | Path) -> tuple[Messages, ...]:
    """Chat conversations from a JSONL file: one ``{"messages": [{"role", "content"}, ...]}``
    per line (blank lines skipped). Anything else raises :class:`ConfigError` naming the line
    and field (for example ``prompts.jsonl:3.messages[0].role``) and what is allowed."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError("--prompts", where, f"a readable UTF-8 JSONL file ({exc})") from exc
    prompts: list[Messages] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        at = f"{where}:{number}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(at, line[:80], f"one JSON object per line ({exc.msg})") from exc
        if not isinstance(obj, dict) or "messages" not in obj:
            raise ConfigError(at, line[:80], 'an object with "messages": [{"role", "content"}]')
        messages = obj["messages"]
        if not isinstance(messages, list) or not messages:
            raise ConfigError(f"{at}.messages", messages, "a non-empty list of chat messages")
        for i, message in enumerate(messages):
            place = f"{at}.messages[{i}]"
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
        prompts.append(tuple(messages))
    if not prompts:
        raise ConfigError("--prompts", where, "a JSONL file with at least one prompt")
    return tuple(prompts)


class _PromptSet:
    """The prompt of request ``i`` of level ``n``: the same for the same seed, different across
    requests and levels (so a prefix cache cannot serve one request from another's prompt)."""

    def __init__(self, settings: BenchSettings) -> None:
        self.settings = settings
        self.words = settings.input_tokens
        self._orders: dict[int, list[int]] = {}

    def calibrate(self, template_tokens: int) -> None:
        """Subtract the tokens the server adds around the words (template and instruction)."""
        self.words = max(1, self.settings.input_tokens - template_tokens)

    def messages(self, level: int, index: int) -> Sequence[Mapping[str, Any]]:
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


# --- per-request records -------------------------------------------------------------------------


def error_kind(exc: BaseException) -> str:
    """A short, stable name for what made a request fail (the key of the errors table)."""
    if isinstance(exc, HTTPStatusError):  # AuthenticationError included: http_401
        return f"http_{exc.status}"
    if isinstance(exc, UpstreamError):
        return f"upstream_{exc.code}" if exc.code is not None else "upstream"
    kinds: tuple[tuple[type[BaseException], str], ...] = (
        (ConnectTimeout, "connect_timeout"),
        (StallTimeout, "stall_timeout"),
        (TimeoutError, "timeout"),
        (ConnectError, "connect"),
        (IncompleteStreamError, "incomplete_stream"),
        (ChunkParseError, "malformed_chunk"),
        (StreamError, "stream"),
        (TransportError, "transport"),
    )
    for cls, name in kinds:
        if isinstance(exc, cls):
            return name
    if isinstance(exc, GptossModalError):
        return re.sub(r"(?<!^)(?=[A-Z])", "_", type(exc).__name__).lower()
    return f"unexpected_{type(exc).__name__}"


@dataclass
class RequestRecord:
    """One measured request: what was sent, what came back and when, or how it failed.

    ``sent`` is the client clock when the request was sent; ``chunk_times_s`` are arrivals
    relative to it; ``chunk_tokens`` the running completion tokens on each chunk (continuous
    usage); ``chunk_flags`` the :mod:`gptoss_modal.bench.stats` chunk bits. ``metrics`` is set for
    successful requests (and for failed ones that got far enough to have some).
    """

    level: str
    index: int
    ok: bool
    sent: float
    error_kind: str | None = None
    error: str | None = None
    queue_s: float | None = None
    response_s: float | None = None
    failed_after_s: float | None = None
    response_id: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    metrics: RequestMetrics | None = None
    chunk_times_s: list[float] = field(default_factory=list)
    chunk_tokens: list[int | None] = field(default_factory=list)
    chunk_flags: list[int] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The record as written to the JSON file (times in milliseconds)."""
        m = self.metrics

        def ms(value: float | None) -> float | None:
            return None if value is None else round(value * 1000.0, 4)

        return {
            "level": self.level,
            "index": self.index,
            "ok": self.ok,
            "error_kind": self.error_kind,
            "error": self.error,
            "response_id": self.response_id,
            "finish_reason": self.finish_reason,
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": m.output_tokens if m else None,
            "tokens_from_usage": m.tokens_from_usage if m else None,
            "queue_ms": ms(self.queue_s),
            "response_ms": ms(self.response_s),
            "ttft_chunk_ms": ms(m.ttft_chunk_s) if m else None,
            "ttft_ms": ms(m.ttft_s) if m else None,
            "ttft_content_ms": ms(m.ttft_content_s) if m else None,
            "tpot_ms": ms(m.tpot_s) if m else None,
            "e2e_ms": ms(m.e2e_s) if m else None,
            "failed_after_ms": ms(self.failed_after_s),
            "itl_per_token": m.itl_per_token if m else None,
            "chunks": {
                "t_ms": [round(t * 1000.0, 4) for t in self.chunk_times_s],
                "tokens": self.chunk_tokens,
                "flags": self.chunk_flags,
            },
        }


def _chunk_bits(chunk: Any) -> int:
    bits = 0
    for choice in chunk.choices:
        bits |= CHUNK_CHOICES
        delta = choice.delta
        if delta.content:
            bits |= CHUNK_OUTPUT | CHUNK_CONTENT
        elif delta.reasoning or delta.reasoning_content or delta.tool_calls:
            bits |= CHUNK_OUTPUT
    return bits


def _record(
    level: Level,
    index: int,
    result: ChatResult,
    error: BaseException | None,
    *,
    queue_s: float | None,
    failed_at: float | None,
) -> RequestRecord:
    sent = result.started
    chunks = result.chunks
    arrivals = [c.arrival for c in chunks]
    tokens = [u.completion_tokens if (u := c.usage) is not None else None for c in chunks]
    flags = [_chunk_bits(c) for c in chunks]
    # The last usage (the usage chunk once the stream is done) and the finishing chunk's reason,
    # read from the end rather than by folding every chunk into a message.
    usage = next((c.usage for c in reversed(chunks) if c.usage is not None), None)
    finishing = next((c for c in reversed(chunks) if c.choices), None)
    trace = StreamTrace(
        sent=sent,
        arrivals=arrivals,
        usage_tokens=tokens,
        flags=flags,
        completion_tokens=usage.completion_tokens if usage is not None and result.done else None,
        prompt_tokens=usage.prompt_tokens if usage is not None else None,
    )
    metrics = request_metrics(trace) if chunks else None
    ok = error is None and result.done
    kind = message = None
    if error is not None:
        kind, message = error_kind(error), str(error)
    elif not result.done:  # pragma: no cover - collect() returns only at [DONE]
        kind, message = "incomplete_stream", "the stream ended without data: [DONE]"
    elif metrics is None or metrics.output_tokens <= 0:
        ok, kind, message = False, "no_output", "the stream finished without generating a token"
    return RequestRecord(
        level=level.label,
        index=index,
        ok=ok,
        sent=sent,
        error_kind=kind,
        error=message,
        queue_s=queue_s,
        response_s=None if result.response_at is None else result.response_at - sent,
        failed_after_s=None if failed_at is None or not sent else failed_at - sent,
        response_id=chunks[0].id if chunks and chunks[0].id else None,
        finish_reason=finishing.choices[0].finish_reason if finishing is not None else None,
        prompt_tokens=trace.prompt_tokens,
        metrics=metrics,
        chunk_times_s=[a - sent for a in arrivals],
        chunk_tokens=tokens,
        chunk_flags=flags,
    )


# --- results -------------------------------------------------------------------------------------


@dataclass
class LevelResult:
    """One level's records, summary, server-side numbers, budgets and warnings."""

    level: Level
    records: list[RequestRecord]
    summary: LevelSummary
    spec_decode: SpecDecode | None = None
    server_s: dict[str, float] = field(default_factory=dict)
    cpu_s: float = 0.0
    cpu_fraction: float = 0.0
    limits: dict[str, float] | None = None
    checks: list[BudgetCheck] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    warmup_errors: dict[str, int] = field(default_factory=dict)

    @property
    def client_bound(self) -> bool:
        return self.cpu_fraction > CLIENT_BOUND_FRACTION

    @property
    def budgets_held(self) -> bool | None:
        """``None`` without budgets, else whether every check passed."""
        if self.limits is None:
            return None
        return all(check.passed for check in self.checks)

    def summary_json(self) -> dict[str, Any]:
        """The level's summary as written to the JSON file (latencies in milliseconds)."""
        s = self.summary
        spec = self.spec_decode
        return {
            "level": self.level.to_json(),
            "requests": s.requests,
            "completed": s.completed,
            "failed": s.failed,
            "errors": s.errors,
            "error_rate": s.error_rate,
            "duration_s": s.duration_s,
            "input_tokens": s.input_tokens,
            "output_tokens": s.output_tokens,
            "output_tokens_per_s": s.output_tokens_per_s,
            "requests_per_s": s.requests_per_s,
            "goodput": None
            if s.good_requests is None
            else {
                "requests": s.good_requests,
                "per_s": s.goodput_per_s,
                "fraction": s.goodput_fraction,
                "limits_ms": {k: v * 1000.0 for k, v in s.slo_s.items()},
            },
            "latency_ms": {
                metric: None if dist is None else dist.scaled(1000.0)
                for metric, dist in s.latency.items()
            },
            "itl_per_token": s.itl_per_token,
            "stream_tokens_per_s": None
            if s.stream_tokens_per_s is None
            else s.stream_tokens_per_s.scaled(1.0),
            "spec_decode": None
            if spec is None
            else {
                "drafts": spec.drafts,
                "draft_tokens": spec.draft_tokens,
                "accepted": spec.accepted,
                "acceptance_rate": spec.acceptance_rate,
                "acceptance_length": spec.acceptance_length,
                "per_position": list(spec.per_position),
            },
            "server_ms": {f"{k}_mean": v * 1000.0 for k, v in self.server_s.items()},
            "client": {
                "cpu_s": self.cpu_s,
                "cpu_fraction": self.cpu_fraction,
                "client_bound": self.client_bound,
            },
            "warmup_errors": self.warmup_errors,
            "warnings": self.warnings,
            "budgets": None
            if self.limits is None
            else {
                "limits": self.limits,
                "held": self.budgets_held,
                "checks": [
                    {
                        "key": c.key,
                        "limit": c.limit,
                        "measured": c.measured,
                        "kind": c.kind,
                        "passed": c.passed,
                    }
                    for c in self.checks
                ],
            },
        }


@dataclass
class BenchRun:
    """A whole run: its settings, each level's result, and what applies to all of them."""

    settings: BenchSettings
    levels: list[LevelResult] = field(default_factory=list)
    started_at: str = ""
    finished_at: str = ""
    budgets_section: str | None = None
    budgets_source: str | None = None
    template_tokens: int | None = None
    fixed_output: bool = True
    warnings: list[str] = field(default_factory=list)

    @property
    def budgets_held(self) -> bool | None:
        """``None`` without budgets, else whether every level's budgets held."""
        held = [level.budgets_held for level in self.levels]
        if all(h is None for h in held):
            return None
        return all(h is not False for h in held)

    @property
    def all_failed(self) -> bool:
        """Whether not one measured request succeeded (in any level)."""
        return all(level.summary.completed == 0 for level in self.levels)

    def to_json(self, *, records: bool = True) -> dict[str, Any]:
        """The JSON document: settings, each level's summary and (optionally) its records."""
        from gptoss_modal import __version__

        return {
            "schema": JSON_SCHEMA,
            "tool": {"name": "gptoss-modal", "version": __version__},
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "settings": self.settings.to_json(),
            "fixed_output": self.fixed_output,
            "template_tokens": self.template_tokens,
            "budgets": None
            if self.budgets_section is None
            else {
                "section": self.budgets_section,
                "source": self.budgets_source,
                "held": self.budgets_held,
            },
            "warnings": self.warnings,
            "levels": [
                {
                    "summary": level.summary_json(),
                    **({"requests": [r.to_json() for r in level.records]} if records else {}),
                }
                for level in self.levels
            ],
        }

    def write_json(self, path: str | Path) -> None:
        """Write :meth:`to_json` to ``path``."""
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.to_json(), handle, separators=(",", ":"), allow_nan=False)
            handle.write("\n")


# --- progress ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveStats:
    """Where a level is: requests done and failed, in flight, seconds, live output tokens/s."""

    level: Level
    done: int
    errors: int
    in_flight: int
    elapsed_s: float
    tokens_per_s: float
    total: int | None
    duration_s: float | None


class Progress(Protocol):
    """Receives the run's progress (the CLI draws a bar; tests record the calls)."""

    def note(self, message: str) -> None: ...
    def level_started(self, level: Level, total: int | None, duration_s: float | None) -> None: ...
    def update(self, live: LiveStats) -> None: ...
    def level_finished(self, live: LiveStats) -> None: ...


class TerminalProgress:
    """A progress bar per level on a terminal (redrawn in place), a line per level otherwise."""

    WIDTH: Final = 24

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty

    def note(self, message: str) -> None:
        self.stream.write(f"{message}\n")
        self.stream.flush()

    def level_started(self, level: Level, total: int | None, duration_s: float | None) -> None:
        if self.tty:
            self.update(LiveStats(level, 0, 0, 0, 0.0, 0.0, total, duration_s))

    def _line(self, live: LiveStats) -> str:
        if live.total:
            fraction = live.done / live.total
            count = f"{live.done}/{live.total} req"
        elif live.duration_s:
            fraction = live.elapsed_s / live.duration_s
            count = f"{live.done} req"
        else:
            fraction, count = 0.0, f"{live.done} req"
        filled = int(self.WIDTH * max(0.0, min(1.0, fraction)))
        bar = "#" * filled + "." * (self.WIDTH - filled)
        minutes, seconds = divmod(int(live.elapsed_s), 60)
        return (
            f"{live.level.label:<16} [{bar}] {count}  {live.errors} err  "
            f"{live.in_flight} in flight  {live.tokens_per_s:,.0f} tok/s  "
            f"{minutes:02d}:{seconds:02d}"
        )

    def update(self, live: LiveStats) -> None:
        if self.tty:
            self.stream.write("\r" + self._line(live) + "\x1b[K")
            self.stream.flush()

    def level_finished(self, live: LiveStats) -> None:
        self.stream.write(
            ("\r" if self.tty else "") + self._line(live) + ("\x1b[K" if self.tty else "") + "\n"
        )
        self.stream.flush()


class SilentProgress:
    """Progress that shows nothing (``--quiet``, benchmarks, tests)."""

    def note(self, message: str) -> None:
        pass

    def level_started(self, level: Level, total: int | None, duration_s: float | None) -> None:
        pass

    def update(self, live: LiveStats) -> None:
        pass

    def level_finished(self, live: LiveStats) -> None:
        pass


# --- the driver ----------------------------------------------------------------------------------


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while a level is measured (as ``timeit`` does).

    A full collection walks every object the process holds and stops the event loop for tens
    of milliseconds, so every chunk arriving meanwhile would be stamped late (measured: p99
    timing error 6 ms with the collector on, 1 ms with it paused, at 64 streams). Reference
    counting still frees almost everything; the cycles a level leaves (failed requests'
    tracebacks) are collected right after it.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


class _LevelState:
    """Live counters of the running level, read by the progress ticker."""

    def __init__(self, level: Level, clock: Callable[[], float]) -> None:
        self.level = level
        self.clock = clock
        self.start = clock()
        self.done = 0
        self.errors = 0
        self.finished_tokens = 0
        self.in_flight: set[ChatResult] = set()
        self.window: collections.deque[tuple[float, int]] = collections.deque()
        # Finished requests whose records are built after the level: (index, result, error,
        # failed at, queue time).
        self.held: list[tuple[int, ChatResult, BaseException | None, float | None, float | None]]
        self.held = []
        self.held_chunks = 0

    def tokens_so_far(self) -> int:
        live = 0
        for result in self.in_flight:
            chunks = result.chunks
            if chunks:
                usage = chunks[-1].usage
                if usage is not None:
                    live += usage.completion_tokens
        return self.finished_tokens + live

    def live(self, total: int | None, duration_s: float | None) -> LiveStats:
        now = self.clock()
        tokens = self.tokens_so_far()
        window = self.window
        window.append((now, tokens))
        while len(window) > 2 and now - window[0][0] > LIVE_WINDOW_S:
            window.popleft()
        then, before = window[0]
        rate = (tokens - before) / (now - then) if now > then else 0.0
        return LiveStats(
            self.level,
            self.done,
            self.errors,
            len(self.in_flight),
            now - self.start,
            rate,
            total,
            duration_s,
        )


class _Driver:
    def __init__(
        self,
        settings: BenchSettings,
        client: Any,
        progress: Progress,
        clock: Callable[[], float],
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.settings = settings
        self.client = client
        self.progress = progress
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.prompts = _PromptSet(settings)
        self.fixed_output = settings.fixed_output
        self.metrics_available = settings.scrape_metrics
        self.warnings: list[str] = []

    def _extra(self, max_tokens: int) -> dict[str, Any] | None:
        # vLLM: ignore_eos skips the EOS token, min_tokens also holds back stop tokens such as
        # harmony's <|return|>, so the reply is exactly max_tokens long.
        if not self.fixed_output:
            return None
        return {"ignore_eos": True, "min_tokens": max_tokens}

    def _stream(self, messages: Sequence[Mapping[str, Any]], max_tokens: int) -> Any:
        return self.client.stream_chat(
            messages,
            reasoning_effort=self.settings.reasoning_effort,
            max_tokens=max_tokens,
            continuous_usage=True,
            extra=self._extra(max_tokens),
        )

    async def _send(
        self, messages: Sequence[Mapping[str, Any]], max_tokens: int, state: _LevelState | None
    ) -> tuple[ChatResult, BaseException | None, float | None]:
        stream = self._stream(messages, max_tokens)
        result: ChatResult = stream.result
        if state is not None:
            state.in_flight.add(result)
        error: BaseException | None = None
        failed_at = None
        try:
            async with stream:
                await stream.collect()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # recorded by kind; a failed request is never dropped
            error, failed_at = exc, self.clock()
        finally:
            if state is not None:
                state.in_flight.discard(result)
        return result, error, failed_at

    # --- probe ---------------------------------------------------------------------------

    async def probe(self) -> int | None:
        """One uncounted request before anything else: fail fast, learn the template size."""
        words = self.settings.input_tokens
        if self.settings.prompts is None:
            rng = random.Random(f"{self.settings.seed}:probe")  # noqa: S311 - workload
            messages: Sequence[Mapping[str, Any]] = synthetic_messages(rng, words)
        else:
            messages = self.settings.prompts[0]
        max_tokens = min(WARMUP_MAX_TOKENS, self.settings.output_tokens)
        result, error, _ = await self._send(messages, max_tokens, None)
        if (
            isinstance(error, HTTPStatusError)
            and error.status == 400
            and not isinstance(error, AuthenticationError)
            and self.fixed_output
        ):
            self.fixed_output = False  # a server that refuses ignore_eos/min_tokens
            result, error, _ = await self._send(messages, max_tokens, None)
            if error is None:
                self.warnings.append(
                    "the server refused ignore_eos/min_tokens (HTTP 400): output lengths are "
                    "whatever the model generates, up to --output-tokens"
                )
            else:
                self.fixed_output = True
        if isinstance(error, HTTPStatusError) and error.status in (400, 401, 403, 404):
            raise BenchmarkError(
                f"the first request failed, and every request would fail the same way "
                f"({error_kind(error)}): {error}"
            ) from error
        if error is not None:
            self.warnings.append(f"the probe request failed ({error_kind(error)}): {error}")
            return None
        usage = result.usage
        if self.settings.prompts is not None:
            return None
        if usage is None:
            self.warnings.append(
                "the server sent no usage: prompts are not calibrated to --input-tokens"
            )
            return None
        template = max(0, usage.prompt_tokens - words)
        self.prompts.calibrate(template)
        return template

    # --- metrics ---------------------------------------------------------------------------

    async def scrape(self) -> MetricsSnapshot | None:
        """``/metrics`` now; ``None`` (with one warning for the run) when it cannot be read."""
        if not self.metrics_available:
            return None
        import aiohttp

        url = f"{self.client.base_url}/metrics"
        problem: str
        try:
            timeout = aiohttp.ClientTimeout(total=METRICS_TIMEOUT_S)
            async with (
                aiohttp.ClientSession(headers=dict(self.settings.headers)) as session,
                session.get(url, timeout=timeout) as response,
            ):
                text = await response.text()
                if response.status == 200:
                    return MetricsSnapshot.parse(text)
                problem = f"HTTP {response.status}"
        except MetricsFormatError as exc:
            problem = str(exc)
        except (aiohttp.ClientError, builtins.TimeoutError, OSError) as exc:
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        self.warnings.append(
            f"{url} could not be read ({problem}): no spec-decode acceptance or server-side "
            "latencies"
        )
        self.metrics_available = False
        return None

    # --- levels ----------------------------------------------------------------------------

    async def warmup(self, level: Level, number: int) -> dict[str, int]:
        count = self.settings.warmup if self.settings.warmup is not None else level.slots
        if count <= 0:
            return {}
        max_tokens = min(WARMUP_MAX_TOKENS, self.settings.output_tokens)
        errors: collections.Counter[str] = collections.Counter()
        slots = asyncio.Semaphore(level.slots)

        async def one(i: int) -> None:
            async with slots:
                messages = self.prompts.messages(-1 - number, i)
                _, error, _ = await self._send(messages, max_tokens, None)
                if error is not None:
                    errors[error_kind(error)] += 1

        await asyncio.gather(*(one(i) for i in range(count)))
        return dict(errors)

    async def _measured(
        self,
        level: Level,
        number: int,
        index: int,
        state: _LevelState,
        records: list[RequestRecord],
        queue_s: float | None,
    ) -> None:
        messages = self.prompts.messages(number, index)
        result, error, failed_at = await self._send(messages, self.settings.output_tokens, state)
        state.done += 1
        if error is not None:
            state.errors += 1
        chunks = result.chunks
        if chunks and (usage := chunks[-1].usage) is not None:
            state.finished_tokens += usage.completion_tokens
        # The record is built after the level, so the level's CPU goes to receiving: held
        # chunks cost memory only (bounded by MAX_HELD_CHUNKS).
        if state.held_chunks + len(chunks) <= MAX_HELD_CHUNKS:
            state.held.append((index, result, error, failed_at, queue_s))
            state.held_chunks += len(chunks)
        else:
            records.append(
                _record(level, index, result, error, queue_s=queue_s, failed_at=failed_at)
            )

    async def closed_loop(
        self, level: Level, number: int, state: _LevelState, records: list[RequestRecord]
    ) -> None:
        total = self.settings.requests_for(level)
        deadline = (
            None if self.settings.duration_s is None else state.start + self.settings.duration_s
        )
        next_index = 0

        async def worker() -> None:
            nonlocal next_index
            while (total is None or next_index < total) and (
                deadline is None or self.clock() < deadline
            ):
                index = next_index
                next_index += 1
                await self._measured(level, number, index, state, records, None)

        await asyncio.gather(*(worker() for _ in range(level.concurrency or 1)))

    async def open_loop(
        self, level: Level, number: int, state: _LevelState, records: list[RequestRecord]
    ) -> None:
        assert level.rate is not None
        total = self.settings.requests_for(level)
        duration = self.settings.duration_s
        rng = random.Random(f"{self.settings.seed}:arrivals:{number}")  # noqa: S311 - workload
        slots = asyncio.Semaphore(level.concurrency) if level.concurrency else None
        tasks: list[asyncio.Task[None]] = []

        async def arrive(index: int, scheduled: float) -> None:
            if slots is None:
                await self._measured(level, number, index, state, records, 0.0)
                return
            async with slots:
                queue = max(0.0, self.clock() - scheduled)
                await self._measured(level, number, index, state, records, queue)

        offset = 0.0
        index = 0
        while total is None or index < total:
            offset += rng.expovariate(level.rate)
            if duration is not None and offset > duration:
                break
            delay = state.start + offset - self.clock()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(arrive(index, state.start + offset)))
            index += 1
        await asyncio.gather(*tasks)

    async def ticker(self, state: _LevelState, total: int | None) -> None:
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL_S)
            self.progress.update(state.live(total, self.settings.duration_s))

    async def level(self, level: Level, number: int, budgets: Budgets | None) -> LevelResult:
        warmup_errors = await self.warmup(level, number)
        before = await self.scrape()
        total = self.settings.requests_for(level)
        self.progress.level_started(level, total, self.settings.duration_s)
        records: list[RequestRecord] = []
        with _collector_paused():
            cpu_start = self.cpu_clock()
            state = _LevelState(level, self.clock)
            ticker = asyncio.ensure_future(self.ticker(state, total))
            try:
                if level.rate is None:
                    await self.closed_loop(level, number, state, records)
                else:
                    await self.open_loop(level, number, state, records)
            finally:
                ticker.cancel()
            wall = self.clock() - state.start
            cpu = self.cpu_clock() - cpu_start
        self.progress.level_finished(state.live(total, self.settings.duration_s))
        records += [
            _record(level, index, result, error, queue_s=queue, failed_at=failed_at)
            for index, result, error, failed_at, queue in state.held
        ]
        state.held.clear()
        after = await self.scrape()
        return self.summarise(level, records, wall, cpu, before, after, budgets, warmup_errors)

    def summarise(
        self,
        level: Level,
        records: list[RequestRecord],
        wall: float,
        cpu: float,
        before: MetricsSnapshot | None,
        after: MetricsSnapshot | None,
        budgets: Budgets | None,
        warmup_errors: dict[str, int],
    ) -> LevelResult:
        records.sort(key=lambda r: r.index)
        ok = [r.metrics for r in records if r.ok and r.metrics is not None]
        errors = collections.Counter(r.error_kind or "unknown" for r in records if not r.ok)
        queue = [r.queue_s for r in records if r.queue_s is not None]
        limits = budgets.for_level(level.concurrency, level.rate) if budgets else None
        summary = summarize_level(
            ok, errors, wall, queue_s=queue, slo_s=slo_from_limits(limits) if limits else None
        )
        spec = server = None
        if before is not None and after is not None:
            spec = spec_decode_between(before, after)
            server = {
                name: mean
                for name, metric in SERVER_HISTOGRAMS.items()
                if (mean := histogram_mean_between(before, after, metric)) is not None
            }
        result = LevelResult(
            level=level,
            records=records,
            summary=summary,
            spec_decode=spec,
            server_s=server or {},
            cpu_s=cpu,
            cpu_fraction=cpu / wall if wall > 0 else 0.0,
            limits=limits,
            warmup_errors=warmup_errors,
        )
        if limits is not None:
            measured = measured_values(
                summary,
                acceptance_rate=spec.acceptance_rate if spec else None,
                acceptance_length=spec.acceptance_length if spec else None,
            )
            result.checks = evaluate_budgets(limits, measured)
        if result.client_bound:
            result.warnings.append(
                f"client-bound: the benchmark's event loop used {result.cpu_fraction:.0%} of a "
                f"core (over {CLIENT_BOUND_FRACTION:.0%}); latencies include time spent waiting "
                "for the client, so lower the concurrency or run the client on a bigger machine"
            )
        if ok and not summary.itl_per_token:
            result.warnings.append(
                "the server sent no per-chunk usage (continuous_usage_stats): ITL is per chunk, "
                "not per token"
            )
        total = self.settings.requests_for(level)
        if level.rate is None and total is not None and total < (level.concurrency or 1):
            result.warnings.append(
                f"only {total} requests at concurrency {level.concurrency}: the level never has "
                f"{level.concurrency} in flight, so its throughput is not that concurrency's"
            )
        if warmup_errors:
            result.warnings.append(
                "warm-up requests failed: "
                + ", ".join(f"{kind} x{n}" for kind, n in warmup_errors.items())
            )
        return result


class AllRequestsFailed(BenchmarkError):
    """Not one measured request succeeded; ``run`` holds every failed request's record."""

    def __init__(self, message: str, run: BenchRun) -> None:
        super().__init__(message)
        self.run = run


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


async def run_benchmark(
    settings: BenchSettings,
    *,
    budgets: Budgets | None = None,
    progress: Progress | None = None,
    on_health: Callable[[Any], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.thread_time,
    client: Any = None,
) -> BenchRun:
    """Run every level of ``settings`` against its server and return the results.

    Raises :class:`BenchmarkError` when the server never became healthy, when the probe request
    shows that every request would fail (wrong key, model or URL), and
    :class:`AllRequestsFailed` (carrying the run, so its records can still be written) when not
    one measured request succeeded. ``client`` replaces the
    :class:`gptoss_modal.stream.client.Client` made from the settings (anything with its
    ``base_url``, ``wait_healthy`` and ``stream_chat``; tests pass a scripted one). ``clock``
    stamps requests and chunks; ``cpu_clock`` is the CPU time of the event-loop thread,
    for the client-bound warning.
    """
    if client is None:
        from gptoss_modal.stream.client import Client

        async with Client(
            settings.url,
            api_key=settings.api_key,
            model=settings.model,
            headers=settings.headers,
            connect_timeout_s=settings.connect_timeout_s,
            stall_timeout_s=settings.stall_timeout_s,
            max_connections=max(level.slots for level in settings.levels) + 8,
            clock=clock,
        ) as own:
            return await run_benchmark(
                settings,
                budgets=budgets,
                progress=progress,
                on_health=on_health,
                clock=clock,
                cpu_clock=cpu_clock,
                client=own,
            )
    sink: Progress = progress if progress is not None else SilentProgress()
    run = BenchRun(
        settings=settings,
        started_at=_now_iso(),
        budgets_section=budgets.name if budgets else None,
        budgets_source=budgets.source if budgets else None,
    )
    try:
        await client.wait_healthy(timeout_s=settings.health_timeout_s, on_progress=on_health)
    except GptossModalError as exc:
        raise BenchmarkError(f"the server is not healthy: {exc}") from exc
    driver = _Driver(settings, client, sink, clock, cpu_clock)
    run.template_tokens = await driver.probe()
    run.fixed_output = driver.fixed_output
    for number, level in enumerate(settings.levels):
        result = await driver.level(level, number, budgets)
        for warning in result.warnings:
            sink.note(f"{level.label}: warning: {warning}")
        run.levels.append(result)
    run.warnings = driver.warnings
    run.finished_at = _now_iso()
    if run.all_failed:
        kinds = collections.Counter[str]()
        for level_result in run.levels:
            kinds.update(level_result.summary.errors)
        detail = ", ".join(f"{kind} x{n}" for kind, n in kinds.most_common())
        raise AllRequestsFailed(
            f"every request failed ({detail or 'no requests were sent'}); see the errors "
            "above and the per-request records",
            run,
        )
    return run
