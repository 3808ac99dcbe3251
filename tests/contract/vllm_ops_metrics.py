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
