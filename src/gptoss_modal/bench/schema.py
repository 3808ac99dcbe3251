"""The benchmark's result JSON, written once as typed structs that encode and decode it.

A run's document (:class:`RunDoc`, schema :data:`SCHEMA`) holds the settings (never the API
key or headers), whether output lengths were fixed, the chat template's token count, the
budgets verdict, warnings, and per level a ``summary`` (:class:`SummaryDoc`, latencies in
milliseconds) and, unless left out, ``requests``: one :class:`RequestDoc` per measured request
with its chunks' arrival times, token counts and flags. ``docs/benchmark.md`` describes it.

The field order here is the key order on disk. Unknown keys are ignored when reading, so a
file from a newer writer of the same schema still reads; a file of another schema does not,
except the previous one (:data:`READABLE`): schema 2 only added fields with defaults (the
scenario, the API, sessions, per-turn numbers, cache share, tool-call validity, the server's
vLLM version), so a schema-1 file reads with those at their defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final, Literal

import msgspec

from gptoss_modal._exceptions import ConfigError

__all__ = [
    "READABLE",
    "SCHEMA",
    "BudgetCheckDoc",
    "BudgetsDoc",
    "CacheDoc",
    "ChunksDoc",
    "ClientDoc",
    "CostDoc",
    "DistributionDoc",
    "GoodputDoc",
    "GpuDoc",
    "LevelBudgetsDoc",
    "LevelDoc",
    "LevelEntryDoc",
    "RequestDoc",
    "RunDoc",
    "SettingsDoc",
    "SpecDecodeDoc",
    "SummaryDoc",
    "ToolCallDoc",
    "ToolCallsDoc",
    "ToolDoc",
    "TurnDoc",
    "decode_run",
    "encode_run",
    "read_run",
]

SCHEMA: Final = "gptoss-modal-bench/2"
READABLE: Final = frozenset({SCHEMA, "gptoss-modal-bench/1"})
_ALLOWED: Final = "a JSON file written by gptoss-modal bench --json"


class _Doc(msgspec.Struct, kw_only=True):
    """Keyword-only, so the field order (the key order on disk) can mix defaults freely.

    Fields added after a schema's first files (cost, dataset, levels not measured) have
    defaults, and the structs holding them omit them when at their default, so a file written
    before them reads and writes back the same."""


class LevelDoc(_Doc):
    """A load level: its label, concurrency (or cap) and open-loop rate."""

    label: str
    concurrency: int | None
    rate: float | None


class GpuDoc(_Doc):
    """The GPUs a run is priced at: ``count`` x ``name`` at ``usd_per_gpu_s`` each (dollars
    per GPU-second), where the price came from (``source``: ``--gpu-price``,
    ``modal-billing-api`` or ``list-price``; ``detail`` says more), and the break-even
    against the hosted price per million output tokens given with ``--compare-price``."""

    name: str
    count: int
    usd_per_gpu_s: float
    usd_per_s: float
    source: str
    detail: str
    compare_usd_per_mtok: float | None = None
    break_even_output_tokens_per_s: float | None = None


class SettingsDoc(_Doc, omit_defaults=True):
    """What the run was asked to do; ``api_key`` is ``"set"`` or null, never the key."""

    url: str
    model: str | None
    levels: list[LevelDoc]
    requests: int | None
    duration_s: float | None
    input_tokens: int
    output_tokens: int
    fixed_output: bool
    reasoning_effort: str | None
    prompts: str | None
    seed: int
    warmup: int | None
    api_key: Literal["set"] | None
    gpu: GpuDoc | None = None
    dataset: str | None = None
    # Schema 2: the workload (chat or agentic), the API, turns per conversation, the tool
    # choice of a user turn, and whether each virtual user sent a Modal-Session-ID.
    scenario: str = "chat"
    api: str = "chat"
    turns: int | None = None
    tool_choice: str | None = None
    session_ids: bool = False


class DistributionDoc(_Doc):
    """A latency's (or a rate's) distribution: its count and statistics, in the doc's unit."""

    count: int
    mean: float
    p50: float
    p90: float
    p95: float
    p99: float
    min: float
    max: float

    def stat(self, name: str) -> float | None:
        """One statistic by name (``mean``, ``p50``, ...); ``None`` for an unknown name."""
        value = getattr(self, name, None)
        return float(value) if isinstance(value, (int, float)) else None


class GoodputDoc(_Doc):
    """The requests within every per-request limit (limits in milliseconds)."""

    requests: int
    per_s: float | None
    fraction: float | None
    limits_ms: dict[str, float]


class SpecDecodeDoc(_Doc):
    """Speculative decoding over the level, from the ``/metrics`` counters."""

    drafts: float
    draft_tokens: float
    accepted: float
    acceptance_rate: float | None
    acceptance_length: float | None
    per_position: list[float]


class ClientDoc(_Doc):
    """The benchmark's own CPU use during the level."""

    cpu_s: float
    cpu_fraction: float
    client_bound: bool


class BudgetCheckDoc(_Doc):
    """One budget held against what was measured."""

    key: str
    limit: float
    measured: float | None
    kind: Literal["max", "min"]
    passed: bool


class LevelBudgetsDoc(_Doc):
    """A level's limits, whether they held, and each check."""

    limits: dict[str, float]
    held: bool | None
    checks: list[BudgetCheckDoc]


class CostDoc(_Doc):
    """A level's cost at its throughput: dollars per million output tokens and per million
    total (prompt + output) tokens, and its ratio to ``--compare-price`` (below 1: cheaper)."""

    usd_per_mtok_output: float | None
    usd_per_mtok_total: float | None
    total_tokens_per_s: float
    vs_compare: float | None = None


class TurnDoc(_Doc):
    """One turn number of an agentic level, over its conversations: requests, mean prompt
    and cached prompt tokens (``None``: the server reported no cached tokens), the cached
    share, and latencies in milliseconds (p50, with the mean TTFT)."""

    turn: int
    requests: int
    completed: int
    prompt_tokens_mean: float | None
    cached_tokens_mean: float | None
    cache_hit_share: float | None
    ttft_p50_ms: float | None
    tpot_p50_ms: float | None
    e2e_p50_ms: float | None


class CacheDoc(_Doc):
    """Prefix caching over a level: prompt tokens of the requests that reported cached
    tokens, how many were cached, and the share (cached / prompt)."""

    requests: int
    prompt_tokens: int
    cached_tokens: int
    hit_share: float | None


class ToolCallsDoc(_Doc):
    """Tool-call validity over a level: attempts, invalid ones, the rate with its binomial
    standard error and 95% Wilson interval, and the problems by kind
    (:mod:`gptoss_modal.bench.tool_validity`)."""

    calls: int
    invalid: int
    invalid_rate: float | None
    standard_error: float | None
    wilson_low: float | None
    wilson_high: float | None
    problems: dict[str, int]


class SummaryDoc(_Doc, omit_defaults=True):
    """Everything the tables show for one level (latencies in milliseconds)."""

    level: LevelDoc
    requests: int
    completed: int
    failed: int
    errors: dict[str, int]
    error_rate: float
    duration_s: float
    input_tokens: int
    output_tokens: int
    output_tokens_per_s: float
    requests_per_s: float
    goodput: GoodputDoc | None
    latency_ms: dict[str, DistributionDoc | None]
    itl_per_token: bool
    stream_tokens_per_s: DistributionDoc | None
    spec_decode: SpecDecodeDoc | None
    server_ms: dict[str, float]
    client: ClientDoc
    warmup_errors: dict[str, int]
    warnings: list[str]
    budgets: LevelBudgetsDoc | None
    cost: CostDoc | None = None
    turns: list[TurnDoc] = []
    cache: CacheDoc | None = None
    tool_calls: ToolCallsDoc | None = None


class ChunksDoc(_Doc):
    """A request's chunks: arrival (ms from the send), running tokens, and flag bits."""

    t_ms: list[float]
    tokens: list[int | None]
    flags: list[int]


class ToolCallDoc(_Doc):
    """One tool call a reply made: its name and its problems (empty: valid)."""

    name: str
    problems: list[str]


class RequestDoc(_Doc, omit_defaults=True):
    """One measured request: its outcome, latencies in milliseconds and its chunks (an agentic
    turn also its turn, conversation, cached prompt tokens and tool calls)."""

    level: str
    index: int
    ok: bool
    error_kind: str | None
    error: str | None
    response_id: str | None
    finish_reason: str | None
    prompt_tokens: int | None
    output_tokens: int | None
    tokens_from_usage: bool | None
    queue_ms: float | None
    response_ms: float | None
    ttft_chunk_ms: float | None
    ttft_ms: float | None
    ttft_content_ms: float | None
    tpot_ms: float | None
    e2e_ms: float | None
    failed_after_ms: float | None
    itl_per_token: bool | None
    chunks: ChunksDoc
    turn: int | None = None
    conversation: str | None = None
    cached_tokens: int | None = None
    tool_calls: list[ToolCallDoc] = []
    lost_calls: list[str] = []


class LevelEntryDoc(_Doc, kw_only=True):
    """A level in the document: its summary, and its records unless they were left out."""

    summary: SummaryDoc
    requests: list[RequestDoc] | msgspec.UnsetType = msgspec.UNSET


class ToolDoc(_Doc):
    """What wrote the document."""

    name: str
    version: str


class BudgetsDoc(_Doc, omit_defaults=True):
    """The budgets section the run was held to, and whether every level's budgets held."""

    section: str
    source: str | None
    held: bool | None
    not_measured: list[str] = []


class RunDoc(_Doc, kw_only=True):
    """A whole run's document, as ``--json`` writes it."""

    schema: str = SCHEMA
    tool: ToolDoc
    started_at: str
    finished_at: str
    settings: SettingsDoc
    fixed_output: bool
    template_tokens: int | None
    budgets: BudgetsDoc | None
    warnings: list[str]
    levels: list[LevelEntryDoc]
    # The server's /version; unset (and not written) when it did not say, or in a schema-1 file.
    vllm_version: str | msgspec.UnsetType = msgspec.UNSET


class _Head(msgspec.Struct):
    schema: str


_encoder: Final = msgspec.json.Encoder()
_head_decoder: Final = msgspec.json.Decoder(_Head)
_run_decoder: Final = msgspec.json.Decoder(RunDoc)


def encode_run(doc: RunDoc) -> bytes:
    """The document as compact JSON."""
    return _encoder.encode(doc)


def decode_run(data: bytes | str, where: str = "<run>") -> RunDoc:
    """A run's document from its JSON; :class:`ConfigError` naming the field that is wrong."""
    try:
        head = _head_decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{where}: schema", str(exc), f"{_ALLOWED} (schema {SCHEMA})") from exc
    except msgspec.DecodeError as exc:
        raise ConfigError(
            where, where, _ALLOWED, message=f"{where} is not JSON ({exc}): give {_ALLOWED}"
        ) from exc
    if head.schema not in READABLE:
        raise ConfigError(f"{where}: schema", head.schema, f"{_ALLOWED} (schema {SCHEMA})")
    try:
        return _run_decoder.decode(data)
    except msgspec.ValidationError as exc:
        # msgspec ends its message with "- at `$.levels[0]...`": name that field.
        detail, _, at = str(exc).rpartition(" - at ")
        field = at.strip("`").removeprefix("$.") if at else "document"
        raise ConfigError(f"{where}: {field}", detail or str(exc), _ALLOWED) from exc


def read_run(path: str | Path) -> RunDoc:
    """A run's document from a file; :class:`ConfigError` when the file is not one."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(
            where, where, _ALLOWED, message=f"cannot read {where} ({exc.strerror}): give {_ALLOWED}"
        ) from exc
    return decode_run(data, where)
