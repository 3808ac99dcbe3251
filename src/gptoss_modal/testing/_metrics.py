"""The Prometheus text the mock serves on ``/metrics``: the metric names, help texts, buckets and
labels of the served vLLM version's exporter (``vllm/v1/metrics/loggers.py``; the contract test
``test_bench_vllm_metrics.py`` compares them with each version's own), fed by the requests it
serves.

Pure: the server tells :meth:`EngineMetrics.record` what it served; nothing here reads a clock.
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence

from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing._config import MockConfig
from gptoss_modal.testing._planning import Plan

__all__ = [
    "E2E_BUCKETS_S",
    "ITL_BUCKETS_S",
    "PROMETHEUS_CONTENT_TYPE",
    "TTFT_BUCKETS_S",
    "EngineMetrics",
    "Histogram",
    "counter_lines",
    "gauge_lines",
]

PROMETHEUS_CONTENT_TYPE = "text/plain; version=1.0.0; charset=utf-8"
# vllm:request_success's finished_reason values: vLLM's FinishReason, per version (0.33.0 added
# "repetition", the repetition detector's stop; the mock never finishes for it).
FINISH_REASONS: dict[str, tuple[str, ...]] = {
    "0.13.0": ("stop", "length", "abort", "error"),
    "0.33.0": ("stop", "length", "abort", "error", "repetition"),
}

TTFT_BUCKETS_S = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
ITL_BUCKETS_S = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0,
)  # fmt: skip
E2E_BUCKETS_S = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
    240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip


class Histogram:
    """A Prometheus histogram with fixed buckets (cumulative counts on output)."""

    def __init__(self, name: str, doc: str, buckets: Sequence[float]) -> None:
        self.name, self.doc, self.buckets = name, doc, tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        # the first bucket whose bound is >= value; past the last bound, the +Inf slot
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.total += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def render(self, labels: str) -> str:
        lines = [f"# HELP {self.name} {self.doc}", f"# TYPE {self.name} histogram"]
        running = 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(float(bound))
            lines.append(f'{self.name}_bucket{{{labels},le="{le}"}} {float(running)}')
        lines.append(f"{self.name}_count{{{labels}}} {float(self.count)}")
        lines.append(f"{self.name}_sum{{{labels}}} {self.total}")
        return "\n".join(lines)


def counter_lines(name: str, doc: str, samples: Sequence[tuple[str, float]]) -> str:
    """A Prometheus counter family (``_total`` samples), one line per label set."""
    lines = [f"# HELP {name}_total {doc}", f"# TYPE {name}_total counter"]
    lines += [f"{name}_total{{{labels}}} {float(value)}" for labels, value in samples]
    return "\n".join(lines)


def gauge_lines(name: str, doc: str, labels: str, value: float) -> str:
    """A Prometheus gauge."""
    return f"# HELP {name} {doc}\n# TYPE {name} gauge\n{name}{{{labels}}} {float(value)}"


class EngineMetrics:
    """vLLM's Prometheus metrics, fed by the requests the mock serves."""

    def __init__(self, config: MockConfig) -> None:
        self.labels = f'model_name="{config.served_model_names[0]}",engine="0"'
        self.finish_reasons = FINISH_REASONS[config.vllm_version]
        self.ttft = Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            TTFT_BUCKETS_S,
        )
        self.itl = Histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            ITL_BUCKETS_S,
        )
        self.e2e = Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            E2E_BUCKETS_S,
        )
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success: Counter[str] = Counter()
        self.running = 0
        self.spec_k = config.num_speculative_tokens
        self.drafts = 0
        self.draft_tokens = 0
        self.accepted = 0
        self.accepted_per_pos = [0] * config.num_speculative_tokens

    def count_steps(self, steps: Sequence[engine.Step]) -> None:
        """Count the speculative-decoding drafts of the steps served."""
        for step in steps:
            if step.drafted:
                self.drafts += 1
                self.draft_tokens += step.drafted
                self.accepted += step.accepted
                for pos in range(step.accepted):
                    self.accepted_per_pos[pos] += 1

    def record(self, plan: Plan, e2e_s: float, served_steps: int) -> None:
        """Count a finished request of which the first ``served_steps`` steps were served (all
        of them: it finished for its own reason; fewer: it was aborted)."""
        steps = plan.steps[:served_steps]
        self.count_steps(steps)
        self.prompt_tokens += plan.prompt_tokens
        self.generation_tokens += sum(s.tokens for s in steps)
        if steps:
            self.ttft.observe(plan.times[0])
            for before, after in zip(plan.times, plan.times[1:served_steps], strict=False):
                self.itl.observe(after - before)
        self.e2e.observe(e2e_s)
        if served_steps == len(plan.steps):
            self.success[plan.generation.finish_reason] += 1
        else:
            self.success["abort"] += 1

    def spec_decode_totals(self) -> dict[str, int]:
        """The spec-decode counters as ``/metrics`` shows them."""
        return {"drafts": self.drafts, "draft_tokens": self.draft_tokens, "accepted": self.accepted}

    def render(self) -> str:
        """The ``/metrics`` text."""
        lab = self.labels
        parts = [
            gauge_lines(
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                lab,
                self.running,
            ),
            counter_lines(
                "vllm:prompt_tokens",
                "Number of prefill tokens processed.",
                [(lab, self.prompt_tokens)],
            ),
            counter_lines(
                "vllm:generation_tokens",
                "Number of generation tokens processed.",
                [(lab, self.generation_tokens)],
            ),
            counter_lines(
                "vllm:request_success",
                "Count of successfully processed requests.",
                [(f'{lab},finished_reason="{r}"', self.success[r]) for r in self.finish_reasons],
            ),
            self.ttft.render(lab),
            self.itl.render(lab),
            self.e2e.render(lab),
        ]
        if self.spec_k:
            parts += self._spec_decode_families()
        return "\n".join(parts) + "\n"

    def _spec_decode_families(self) -> list[str]:
        lab = self.labels
        return [
            counter_lines(
                "vllm:spec_decode_num_drafts",
                "Number of spec decoding drafts.",
                [(lab, self.drafts)],
            ),
            counter_lines(
                "vllm:spec_decode_num_draft_tokens",
                "Number of draft tokens.",
                [(lab, self.draft_tokens)],
            ),
            counter_lines(
                "vllm:spec_decode_num_accepted_tokens",
                "Number of accepted tokens.",
                [(lab, self.accepted)],
            ),
            counter_lines(
                "vllm:spec_decode_num_accepted_tokens_per_pos",
                "Accepted tokens per draft position.",
                [(f'{lab},position="{i}"', n) for i, n in enumerate(self.accepted_per_pos)],
            ),
        ]
