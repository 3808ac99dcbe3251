"""Against the mock, as a new user would: ``--gpu B200`` prices each level, ``--format vllm``
writes files vLLM's own readers read, vLLM's flag spellings work, the model comes from
``/v1/models``, and a budget for a level the run skipped is reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gptoss_modal.bench.cost import LIST_PRICES_USD_PER_S
from gptoss_modal.cli import main
from gptoss_modal.testing.mock_server import MockConfig, run_mock_in_thread
from tests.contract._oracle import VllmOracle, vllm_venv_python

FAST = ["--output-tokens", "16", "--input-tokens", "32", "--quiet"]


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """A fast mock in a thread of this process (nothing here is timed, and a mock process costs
    ~0.5 s of CPU to start in each xdist worker that runs one of these tests)."""
    with run_mock_in_thread(MockConfig(ttft_ms=20.0, itl_ms=2.0)) as mock:
        yield mock.url


@pytest.mark.mock_only
def test_gpu_prices_each_level_from_the_list_price(
    mock_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--gpu B200:2 --compare-price 0.19/M: the table shows $/M per level and the break-even,
    and the JSON's cost is price / throughput."""
    out = tmp_path / "run.json"
    argv = ["bench", mock_url, "--concurrency", "1,4", "--requests", "4", *FAST]
    argv += ["--gpu", "B200:2", "--compare-price", "0.19/M", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "cost: 2 x B200" in printed
    assert "list-price" in printed
    assert "break-even with $0.19/M" in printed
    doc = json.loads(out.read_text())
    gpu = doc["settings"]["gpu"]
    assert gpu["usd_per_s"] == pytest.approx(2 * LIST_PRICES_USD_PER_S["B200"])
    for level in doc["levels"]:
        s = level["summary"]
        expected = gpu["usd_per_s"] / s["output_tokens_per_s"] * 1e6
        assert s["cost"]["usd_per_mtok_output"] == pytest.approx(expected)
    assert doc["settings"]["model"] == "openai/gpt-oss-20b"  # read from /v1/models


@pytest.mark.mock_only
def test_budget_on_an_unrun_level_and_on_cost(
    mock_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A [s.concurrency.4] table with a c=1 run is printed as not measured; an impossible
    max_cost_per_mtok fails the run with exit 1."""
    budgets = tmp_path / "b.toml"
    budgets.write_text("[s.all]\nmax_cost_per_mtok = 0.0001\n[s.concurrency.4]\nttft_p50_ms = 9\n")
    argv = ["bench", mock_url, "--concurrency", "1", "--requests", "2", *FAST]
    argv += ["--budgets", str(budgets), "--gpu-price", "0.001", "--gpu", "s"]
    assert main(argv) == 1
    printed = capsys.readouterr().out
    assert "not measured  [s.concurrency.4]" in printed
    assert "FAIL  c=1" in printed
    assert "max_cost_per_mtok" in printed


def _vllm_run(mock_url: str, tmp_path: Path) -> list[dict[str, object]]:
    out = tmp_path / "vllm.json"
    argv = ["bench", mock_url, "--max-concurrency", "2", "--num-prompts", "4", *FAST]
    argv += ["--json", str(out), "--format", "vllm"]
    assert main(argv) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.mock_only
def test_vllm_format_has_vllms_keys(mock_url: str, tmp_path: Path) -> None:
    """vLLM's flag spellings are accepted; the file has vLLM's flat keys and types."""
    (result,) = _vllm_run(mock_url, tmp_path)
    assert result["max_concurrency"] == 2
    assert result["num_prompts"] == 4
    assert result["request_rate"] == "inf"
    assert result["completed"] == 4
    for key in ("median_ttft_ms", "p99_itl_ms", "mean_tpot_ms", "std_e2el_ms"):
        value = result[key]
        assert isinstance(value, float)
        assert value > 0
    assert isinstance(result["output_throughput"], float)
    assert len(result["latencies"]) == 4  # type: ignore[arg-type]


@pytest.mark.vllm
def test_vllms_own_readers_read_our_vllm_format(
    mock_url: str, tmp_path: Path, vllm_oracle_for: object
) -> None:
    """vLLM 0.33.0's sweep Pareto reader and its PyTorch-format export read our file: the
    per-user throughput is output_throughput / concurrency, and all 12 metrics are found."""
    if vllm_venv_python("0.33.0") is None:
        pytest.skip("the vLLM 0.33.0 venv is not cached")
    oracle: VllmOracle = vllm_oracle_for("0.33.0")  # type: ignore[operator]
    results = _vllm_run(mock_url, tmp_path)
    answer = oracle.call("read_bench_results", results=results)
    assert answer["ok"], answer
    assert answer["skipped"] == 0
    expected = float(results[0]["output_throughput"]) / 2  # type: ignore[arg-type]
    assert answer["tokens_per_user"] == [pytest.approx(expected)]
    assert len(answer["pytorch_metrics"]) == 12
