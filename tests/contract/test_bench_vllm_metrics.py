"""The benchmark reads the spec-decode counters exactly as vLLM 0.13.0 exports them, and the
mock's ``/metrics`` is each vLLM version's own exporter in names, types, HELP, labels and buckets.

vLLM's own ``SpecDecodingProm`` (two engines, as with data parallelism) is fed known draft
outcomes in the cached vLLM venv (an oracle op, ``vllm_ops_metrics.py``, so no second vLLM
import), and ``prometheus_client`` renders the whole registry (process and GC metrics
included); our parser reads every scrape, and the acceptance computed between two scrapes is
the one the drafts imply.
"""

from __future__ import annotations

import pytest

from gptoss_modal.bench.prometheus import MetricsSnapshot, spec_decode_between
from gptoss_modal.testing._metrics import EngineMetrics
from gptoss_modal.testing.mock_server import MockConfig
from tests.contract._oracle import VllmOracle

pytestmark = pytest.mark.vllm

K = 3  # draft tokens per step
# Accepted drafts of each step, per scrape window, per engine.
WINDOWS = [
    [[1, 2, 3, 0], [3, 3]],
    [[0, 1, 2, 3, 3, 2], [1, 1, 0]],
]


@pytest.fixture(scope="module")
def scrapes(vllm: VllmOracle) -> list[MetricsSnapshot]:
    """/metrics text rendered by vLLM 0.13.0's own exporter: before, after window 1 and 2."""
    answer = vllm.call("spec_decode_scrapes", k=K, windows=WINDOWS)
    assert answer["ok"], answer
    return [MetricsSnapshot.parse(text) for text in answer["scrapes"]]


@pytest.mark.parametrize("window", [0, 1])
def test_acceptance_between_vllm_scrapes_is_what_the_drafts_imply(
    scrapes: list[MetricsSnapshot], window: int
) -> None:
    """Rate, mean length and per-position acceptance over a window match its draft outcomes,
    summed over both engines."""
    steps = [accepted for engine in WINDOWS[window] for accepted in engine]
    spec = spec_decode_between(scrapes[window], scrapes[window + 1])
    assert spec is not None
    assert spec.drafts == len(steps)
    assert spec.draft_tokens == K * len(steps)
    assert spec.accepted == sum(steps)
    assert spec.acceptance_rate == pytest.approx(sum(steps) / (K * len(steps)))
    assert spec.acceptance_length == pytest.approx(1 + sum(steps) / len(steps))
    per_position = tuple(sum(a > i for a in steps) / len(steps) for i in range(K))
    assert spec.per_position == pytest.approx(per_position)


def test_the_whole_vllm_registry_parses(scrapes: list[MetricsSnapshot]) -> None:
    """Every line vLLM's registry renders (process, GC, _created gauges) is read as a sample."""
    names = {sample.name for sample in scrapes[-1].samples}
    assert "vllm:spec_decode_num_drafts_total" in names
    assert any(name.startswith("python_gc") for name in names)


# The families the bench reads (its /metrics scrape) must be among those the mock serves.
BENCH_READS = {
    "vllm:time_to_first_token_seconds",
    "vllm:spec_decode_num_drafts",
    "vllm:spec_decode_num_draft_tokens",
    "vllm:spec_decode_num_accepted_tokens",
    "vllm:spec_decode_num_accepted_tokens_per_pos",
}


def _families(oracle: VllmOracle, op: str, **request: object) -> dict[str, dict[str, object]]:
    answer = oracle.call(op, **request)
    assert answer["ok"], answer
    families: dict[str, dict[str, object]] = answer["families"]
    return families


def test_the_mocks_metrics_are_the_exporters_of_its_vllm(vllm_each: VllmOracle) -> None:
    """Every family the mock serves in a version's mode is one that version's own
    ``PrometheusStatLogger`` registers, with the same type, HELP text, label names, label values
    (finish reasons, draft positions) and histogram buckets, read by prometheus_client's parser."""
    config = MockConfig(vllm_version=vllm_each.version, num_speculative_tokens=K)  # type: ignore[arg-type]
    text = EngineMetrics(config).render()
    served = _families(vllm_each, "parse_exposition", text=text)
    exported = _families(
        vllm_each, "exporter_families", k=K, model_name=config.served_model_names[0]
    )
    assert set(served) >= BENCH_READS
    for name, family in served.items():
        assert name in exported, f"vLLM {vllm_each.version} exports no {name}"
        assert family == exported[name], name


def test_the_comparison_sees_a_wrong_help_text(vllm_each: VllmOracle) -> None:
    """The partner: a mock family whose HELP text differs from vLLM's is told apart."""
    text = EngineMetrics(MockConfig(vllm_version=vllm_each.version)).render()  # type: ignore[arg-type]
    wrong = text.replace("Number of prefill tokens processed.", "Prompt tokens.")
    served = _families(vllm_each, "parse_exposition", text=wrong)
    exported = _families(vllm_each, "exporter_families", k=0, model_name="llm")
    assert served["vllm:prompt_tokens"]["help"] == "Prompt tokens."
    assert served["vllm:prompt_tokens"] != exported["vllm:prompt_tokens"]
