"""A run as ``vllm bench serve --save-result`` writes it, so tooling that reads those files reads
ours (``gptoss-modal bench URL --json OUT --format vllm``).

vLLM writes one flat JSON object per run (``--save-result``), and appends one per line with
``--append-result``; a run of several levels here is several of vLLM's runs, so the file holds
one object per level, one per line (a one-level run is exactly a ``--save-result`` file). The
keys are vLLM 0.33.0's (``vllm/benchmarks/serve.py``, without ``--save-detailed``):

* setup: ``date`` (``%Y%m%d-%H%M%S``), ``endpoint_type``/``backend`` (``openai-chat``),
  ``label``, ``model_id``, ``tokenizer_id``, ``num_prompts``, ``request_rate`` (``"inf"`` for
  a closed-loop level), ``burstiness`` (1.0: Poisson), ``max_concurrency``;
* results: ``duration`` (s), ``completed``, ``failed``, ``total_input_tokens``,
  ``total_output_tokens``, ``request_throughput`` (req/s), ``request_goodput`` (null without
  per-request limits), ``output_throughput`` and ``total_token_throughput`` (tok/s),
  ``max_output_tokens_per_s`` (null: this benchmark does not bucket tokens per second),
  ``max_concurrent_requests``, ``rtfx`` (0.0 for text), ``latencies`` and ``queue_times``
  (per request, seconds; 0.0 for a failed one, as vLLM);
* per metric ``ttft``, ``tpot``, ``itl``, ``e2el``: ``mean_``, ``median_``, ``std_`` and
  ``p50_``/``p90_``/``p95_``/``p99_<metric>_ms`` (what ``--percentile-metrics
  ttft,tpot,itl,e2el --metric-percentiles 50,90,95,99`` writes). vLLM's TTFT is the first
  chunk of any kind, ours ``ttft_chunk``; the ITL is per token, as vLLM's.
* with spec-decode counters: ``spec_decode_acceptance_rate`` (a percentage, as vLLM) and the
  other ``spec_decode_*`` keys.
"""

from __future__ import annotations

import datetime
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from gptoss_modal.bench.results import BenchRun, LevelResult
from gptoss_modal.bench.stats import RequestMetrics, percentile

__all__ = ["BACKEND", "METRICS", "PERCENTILES", "level_result", "vllm_results", "write_vllm"]

BACKEND: Final = "openai-chat"  # vLLM's name for the chat-completions endpoint
METRICS: Final = ("ttft", "tpot", "itl", "e2el")
PERCENTILES: Final = (50, 90, 95, 99)
_MS: Final = 1000.0


def _stats(
    name: str, values: Sequence[float], weights: Sequence[int] | None = None
) -> dict[str, Any]:
    """vLLM's ``mean_/median_/std_/pNN_<name>_ms`` of ``values`` (seconds); 0.0 for none, as
    vLLM's ``np.mean(values or 0)``. ``weights`` count each value that many times (ITL)."""
    if weights is not None:
        values = [v for v, w in zip(values, weights, strict=True) for _ in range(w)]
    out: dict[str, Any] = {}
    if not values:
        out.update({f"mean_{name}_ms": 0.0, f"median_{name}_ms": 0.0, f"std_{name}_ms": 0.0})
        out.update({f"p{p}_{name}_ms": 0.0 for p in PERCENTILES})
        return out
    mean = math.fsum(values) / len(values)
    out[f"mean_{name}_ms"] = mean * _MS
    out[f"median_{name}_ms"] = percentile(values, 50.0) * _MS
    # numpy's std: the population standard deviation.
    out[f"std_{name}_ms"] = (
        math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values)) * _MS
    )
    for p in PERCENTILES:
        out[f"p{p}_{name}_ms"] = percentile(values, float(p)) * _MS
    return out


def _latency_stats(ok: Sequence[RequestMetrics]) -> dict[str, Any]:
    itl = [v for m in ok for v in m.itl_s]
    itl_weights = [w for m in ok for w in m.itl_tokens]
    return {
        **_stats("ttft", [m.ttft_chunk_s for m in ok if m.ttft_chunk_s is not None]),
        **_stats("tpot", [m.tpot_s for m in ok if m.tpot_s is not None]),
        **_stats("itl", itl, itl_weights),
        **_stats("e2el", [m.e2e_s for m in ok if m.e2e_s is not None]),
    }


def _spec_decode(level: LevelResult) -> dict[str, Any]:
    spec = level.spec_decode
    if spec is None or spec.acceptance_rate is None:
        return {}
    return {
        "spec_decode_acceptance_rate": spec.acceptance_rate * 100.0,  # vLLM reports percent
        "spec_decode_acceptance_length": spec.acceptance_length,
        "spec_decode_num_drafts": int(spec.drafts),
        "spec_decode_draft_tokens": int(spec.draft_tokens),
        "spec_decode_accepted_tokens": int(spec.accepted),
        "spec_decode_per_position_acceptance_rates": list(spec.per_position),
    }


def _date(started_at: str) -> str:
    try:
        when = datetime.datetime.fromisoformat(started_at)
    except ValueError:
        when = datetime.datetime.now(datetime.UTC)
    return when.strftime("%Y%m%d-%H%M%S")


def level_result(run: BenchRun, level: LevelResult) -> dict[str, Any]:
    """One level as one ``vllm bench serve --save-result`` object."""
    s = level.summary
    ok = [r.metrics for r in level.records if r.ok and r.metrics is not None]
    model = run.settings.model
    total_tokens = s.input_tokens + s.output_tokens
    return {
        "date": _date(run.started_at),
        "endpoint_type": BACKEND,
        "backend": BACKEND,
        "label": None,
        "model_id": model,
        "tokenizer_id": model,
        "num_prompts": s.requests,
        "request_rate": level.level.rate if level.level.rate is not None else "inf",
        "burstiness": 1.0,
        "max_concurrency": level.level.concurrency,
        "duration": s.duration_s,
        "completed": s.completed,
        "failed": s.failed,
        "total_input_tokens": s.input_tokens,
        "total_output_tokens": s.output_tokens,
        "request_throughput": s.requests_per_s,
        "request_goodput": s.goodput_per_s,
        "output_throughput": s.output_tokens_per_s,
        "total_token_throughput": total_tokens / s.duration_s if s.duration_s > 0 else 0.0,
        "max_output_tokens_per_s": None,
        "max_concurrent_requests": level.level.slots,
        "rtfx": 0.0,
        "latencies": [
            r.metrics.e2e_s if r.ok and r.metrics and r.metrics.e2e_s is not None else 0.0
            for r in level.records
        ],
        "queue_times": [r.queue_s or 0.0 for r in level.records],
        **_latency_stats(ok),
        **_spec_decode(level),
    }


def vllm_results(run: BenchRun) -> list[dict[str, Any]]:
    """Every level of ``run``, each as a ``vllm bench serve --save-result`` object."""
    return [level_result(run, level) for level in run.levels]


def write_vllm(run: BenchRun, path: str | Path) -> None:
    """Write one object per level, one per line (vLLM's ``--append-result`` layout)."""
    lines = [json.dumps(result, allow_nan=False) for result in vllm_results(run)]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
