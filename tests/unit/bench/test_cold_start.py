"""``bench cold-start``: against a mock started with a cold start of N seconds, time to healthy is
N within 10%, the token times follow it, and the run's JSON carries every sample and percentiles."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gptoss_modal import ConfigError
from gptoss_modal.bench.cold_start import ColdStartRun, ColdStartSample, measure_cold_starts
from gptoss_modal.cli.cold_start import main
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

COLD_START_S = 2.0
POLL_S = 0.05  # the measured time is late by at most this (2.5% of N)


async def test_time_to_healthy_is_the_mocks_cold_start_within_ten_percent() -> None:
    """Each of 2 samples restarts the mock cold for N s: healthy_s is N within 10%, and the
    first token and first content come after it."""
    servers: list[MockVLLM] = []
    port = 0

    async def make_cold(index: int) -> None:
        nonlocal port
        if servers:
            await servers[-1].stop()
        server = MockVLLM(MockConfig(cold_start_s=COLD_START_S), port=port)
        await server.start()
        port = server.port
        servers.append(server)

    try:
        await make_cold(-1)  # bind a port first, so the URL is known
        url = servers[0].url
        run = await measure_cold_starts(url, make_cold=make_cold, runs=2, poll_s=POLL_S)
    finally:
        await servers[-1].stop()
    assert len(run.samples) == 2
    for sample in run.samples:
        assert abs(sample.healthy_s - COLD_START_S) <= 0.1 * COLD_START_S
        assert sample.ttft_s is not None
        assert sample.first_content_s is not None
        assert sample.healthy_s < sample.ttft_s <= sample.first_content_s
        assert sample.error is None
    summary = run.summary()
    assert set(summary) == {"healthy_s", "ttft_s", "first_content_s"}
    assert summary["healthy_s"]["min"] <= summary["healthy_s"]["p50"] <= summary["healthy_s"]["max"]


def test_the_summary_is_percentiles_of_the_samples() -> None:
    """p50 of 1, 2, 3 is 2 and the mean 2; a metric no sample has is left out."""
    run = ColdStartRun("http://x", "snapshot")
    run.samples = [ColdStartSample(float(v), None, None, 1) for v in (3, 1, 2)]
    assert run.summary() == {
        "healthy_s": {"p50": 2.0, "p90": 2.8, "p99": 2.98, "min": 1.0, "max": 3.0, "mean": 2.0}
    }
    assert run.to_json()["kind"] == "cold_start"
    assert run.to_json()["start_mode"] == "snapshot"


async def test_no_runs_is_a_config_error() -> None:
    """runs=0 names the field."""

    async def make_cold(index: int) -> None:
        await asyncio.sleep(0)

    with pytest.raises(ConfigError, match="runs"):
        await measure_cold_starts("http://127.0.0.1:1", make_cold=make_cold, runs=0)


async def test_the_cli_writes_the_json_and_exits_zero(tmp_path: Path) -> None:
    """`cold-start URL --idle 0 --runs 1 --json F` against a warm mock: exit 0, one sample."""
    out = tmp_path / "cold.json"
    async with MockVLLM() as server:
        argv = [server.url, "--idle", "0", "--runs", "1", "--json", str(out), "--poll", "50ms"]
        code = await asyncio.to_thread(main, argv)
    assert code == 0
    data = json.loads(out.read_text())
    assert data["kind"] == "cold_start"
    assert len(data["samples"]) == 1
    assert data["samples"][0]["error"] is None


def test_the_module_runs_standalone() -> None:
    """`python -m gptoss_modal.cli.cold_start --help` works before it is wired into bench."""
    result = subprocess.run(
        [sys.executable, "-m", "gptoss_modal.cli.cold_start", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "--modal-app" in result.stdout


async def test_runners_idle_waits_for_zero_containers_and_gives_up_in_time() -> None:
    """Polls until the count is 0; a count that stays up fails after timeout_s (fake sleep)."""
    from gptoss_modal._exceptions import BenchmarkError
    from gptoss_modal.bench.cold_start import runners_idle

    counts = iter([2, 1, 0])
    slept: list[float] = []

    async def count() -> int:
        return next(counts)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    await runners_idle(count, what="app/serve", poll_s=10, sleep=sleep)(0)
    assert slept == [10, 10]

    async def busy() -> int:
        return 1

    with pytest.raises(BenchmarkError, match="still had 1 containers after 30 s"):
        await runners_idle(busy, what="app/serve", timeout_s=30, poll_s=10, sleep=sleep)(0)
