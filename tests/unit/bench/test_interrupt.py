"""Ctrl-C during a run: the levels already measured are printed and written, then exit 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from gptoss_modal.cli import EXIT_INTERRUPTED
from gptoss_modal.testing.mock_server import MockConfig, run_mock_in_thread

# One request of 200 tokens at 10 ms each: a level lasts about 2 s, so the signal sent when
# the first level's line appears lands well inside the second on a loaded machine (a signal
# takes milliseconds). The mock runs in a thread of this process: the bench is the subprocess
# under test, and a second process would cost ~0.5 s of CPU to start.
MOCK = MockConfig(ttft_ms=50.0, itl_ms=10.0, stream_interval=1)
BENCH_ARGS = ("--concurrency", "1,2", "--requests", "1", "--output-tokens", "200")
LINE_WAIT_S = 120.0  # generous: only a hung run would take this long


def test_ctrl_c_after_the_first_level_keeps_it(tmp_path: Path) -> None:
    """SIGINT once level c=1 is done (c=2 warms up): exit 130, the table and the JSON hold c=1
    only, and a warning names the level that was not measured."""
    out = tmp_path / "run.json"
    with run_mock_in_thread(MOCK) as mock:
        argv = [sys.executable, "-m", "gptoss_modal", "bench", mock.url, *BENCH_ARGS]
        env = {**os.environ, "NO_COLOR": "1"}
        proc = subprocess.Popen(
            [*argv, "--json", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stderr is not None
        seen: list[str] = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("c=2: warm-up"):  # c=1 is measured and summarised
                proc.send_signal(signal.SIGINT)
                break
        stdout, rest = proc.communicate(timeout=LINE_WAIT_S)
    stderr = "".join(seen) + rest
    assert proc.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    doc = json.loads(out.read_text())
    assert [level["summary"]["level"]["label"] for level in doc["levels"]] == ["c=1"]
    assert len(doc["levels"][0]["requests"]) == 1
    assert any("interrupted" in w and "not measured: c=2" in w for w in doc["warnings"])
    assert "c=1" in stdout
    assert "c=2" not in stdout.split("json:")[0]
    assert f"json: {out}" in stdout
