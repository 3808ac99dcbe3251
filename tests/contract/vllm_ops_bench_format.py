"""Oracle op: vLLM's own readers of ``vllm bench serve`` result files, fed our ``--format vllm``.

Runs only under a cached vLLM venv's interpreter (0.33.0 has ``vllm.benchmarks.sweep``). Each
object goes through the sweep plots' ``_convert_inf_nan_strings`` and the Pareto plot's
``_prepare_records`` (what ``vllm bench sweep plot_pareto`` does with saved results), and
``save_to_pytorch_benchmark_format`` with its converter captured, so the metrics it picks out
of a result are returned.
"""

from __future__ import annotations

import argparse
from typing import Any
from unittest import mock


def op_read_bench_results(req: dict[str, Any]) -> dict[str, Any]:
    """What vLLM's readers make of ``req["results"]`` (a list of result objects)."""
    from vllm.benchmarks import serve
    from vllm.benchmarks.sweep.plot import _convert_inf_nan_strings
    from vllm.benchmarks.sweep.plot_pareto import _prepare_records

    data = _convert_inf_nan_strings(req["results"])
    prepared, skipped = _prepare_records(data, user_count_var="max_concurrency", gpu_count_var=None)
    captured: dict[str, Any] = {}

    def convert(*, args: Any, metrics: dict[str, Any], extra_info: dict[str, Any]) -> list[Any]:
        captured["metrics"] = sorted(metrics)
        return []

    with mock.patch.object(serve, "convert_to_pytorch_benchmark_format", convert):
        serve.save_to_pytorch_benchmark_format(argparse.Namespace(), data[0], "x.json")
    return {
        "ok": True,
        "tokens_per_user": [r["tokens_per_user"] for r in prepared],
        "skipped": skipped,
        "pytorch_metrics": captured.get("metrics", []),
    }


OPS = {"read_bench_results": op_read_bench_results}
