"""How long `import gptoss_modal` takes, beside the libraries it keeps out of its import.

Each import runs in a fresh interpreter; the table shows the median of several runs minus the
bare interpreter's start-up, and each peer's time as a multiple of ours.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

RUNS = 9
TARGETS = {
    "gptoss_modal": "import gptoss_modal",
    "gptoss_modal + build": ("import gptoss_modal as g; g.build_vllm_command(g.ServeConfig())"),
    "aiohttp": "import aiohttp",
    "openai": "import openai",
    "modal": "import modal",
}


def _median_seconds(code: str) -> float:
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    baseline = _median_seconds("pass")
    results = {name: _median_seconds(code) - baseline for name, code in TARGETS.items()}
    ours = results["gptoss_modal"]
    print(f"interpreter start-up (subtracted): {baseline * 1000:.1f} ms; median of {RUNS} runs")
    print(f"{'import':<24}{'ms':>10}{'x gptoss_modal':>16}")
    for name, seconds in results.items():
        print(f"{name:<24}{seconds * 1000:>10.1f}{seconds / ours:>16.1f}")


if __name__ == "__main__":
    main()
