"""Oracle op: ``/metrics`` text rendered by vLLM's own spec-decode exporter.

Runs only under a cached vLLM venv's interpreter, loaded by ``vllm_oracle.py``. It feeds vLLM's
``SpecDecodingProm`` (two engines, as with data parallelism) known draft outcomes and renders
the whole ``prometheus_client`` registry (process and GC metrics included) after each window.
"""

from __future__ import annotations

import types
from typing import Any


def op_spec_decode_scrapes(req: dict[str, Any]) -> dict[str, Any]:
    """One scrape before the windows and one after each; the collectors are removed again so
    the op can run twice in one oracle."""
    import prometheus_client
    from vllm.v1.spec_decode.metrics import SpecDecodingProm, SpecDecodingStats

    k: int = req["k"]
    windows: list[list[list[int]]] = req["windows"]
    registry = prometheus_client.REGISTRY
    before = set(registry._collector_to_names)
    config = types.SimpleNamespace(num_speculative_tokens=k)
    prom = SpecDecodingProm(config, ["model_name", "engine"], {0: ["llm", "0"], 1: ["llm", "1"]})
    try:
        scrapes = [prometheus_client.generate_latest().decode()]
        for window in windows:
            for engine, steps in enumerate(window):
                stats = SpecDecodingStats.new(k)
                for accepted in steps:
                    stats.observe_draft(k, accepted)
                prom.observe(stats, engine)
            scrapes.append(prometheus_client.generate_latest().decode())
    finally:
        for collector in set(registry._collector_to_names) - before:
            registry.unregister(collector)
    return {"ok": True, "scrapes": scrapes}


OPS = {"spec_decode_scrapes": op_spec_decode_scrapes}


def _describe(families: Any) -> dict[str, dict[str, Any]]:
    """Each ``vllm:`` metric family as ``{name: {type, help, labels, buckets, values}}``: its
    label names, its histogram bounds, and the values each non-engine label takes."""
    described: dict[str, dict[str, Any]] = {}
    for family in families:
        if not family.name.startswith("vllm:"):
            continue
        labels = sorted({key for s in family.samples for key in s.labels if key != "le"})
        bounds = [s.labels["le"] for s in family.samples if s.name.endswith("_bucket")]
        values = {
            key: sorted({s.labels[key] for s in family.samples if key in s.labels})
            for key in labels
            if key not in ("model_name", "engine")
        }
        described[family.name] = {
            "type": family.type,
            "help": family.documentation,
            "labels": labels,
            "buckets": sorted(set(bounds), key=float),
            "values": values,
        }
    return described


def op_exporter_families(req: dict[str, Any]) -> dict[str, Any]:
    """The families vLLM's own ``PrometheusStatLogger`` registers for one engine, serving
    ``model_name`` with ``k`` draft tokens (0: no speculative decoding)."""
    import prometheus_client
    from vllm.config import CacheConfig, ObservabilityConfig
    from vllm.v1.metrics.loggers import PrometheusStatLogger

    k: int = req["k"]
    spec = types.SimpleNamespace(num_speculative_tokens=k, method="eagle3") if k else None
    model = types.SimpleNamespace(
        served_model_name=req["model_name"], max_model_len=131072, is_diffusion=False
    )
    # What the logger reads of a VllmConfig (building a real one looks the model up on the Hub).
    config = types.SimpleNamespace(
        observability_config=ObservabilityConfig(),
        model_config=model,
        speculative_config=spec,
        cache_config=CacheConfig(),
        kv_transfer_config=None,
        ec_transfer_config=None,
        watermark_config=None,
        lora_config=None,
    )
    registry = prometheus_client.REGISTRY
    before = set(registry._collector_to_names)
    try:
        PrometheusStatLogger(config, [0])
        families = _describe(registry.collect())
    finally:
        for collector in set(registry._collector_to_names) - before:
            registry.unregister(collector)
    return {"ok": True, "families": families}


def op_parse_exposition(req: dict[str, Any]) -> dict[str, Any]:
    """``text`` read by prometheus_client's own parser, described as the exporter's families."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        families = _describe(text_string_to_metric_families(req["text"]))
    except ValueError as exc:  # the parser's verdict on malformed text
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "families": families}


OPS |= {"exporter_families": op_exporter_families, "parse_exposition": op_parse_exposition}
