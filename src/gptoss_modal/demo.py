"""``make demo`` and ``make demo-bench``: the whole streaming path with no account and no GPU.

``python -m gptoss_modal.demo chat [PROMPT]`` starts the mock vLLM server in this process on a
free port (gpt-oss-like timing: 300 ms to the first token, 15 ms per token) and runs
``gptoss-modal chat`` against it; with ``--cold-start-s N`` the mock answers 503 on ``/health``
for N seconds and the chat waits for it (``--wait``). ``python -m gptoss_modal.demo bench``
starts the mock in another process and runs ``gptoss-modal bench`` against it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gptoss_modal import cli
from gptoss_modal.testing.mock_server import MockConfig, run_mock_in_thread, spawn_mock_process

DEFAULT_PROMPT = "Explain in two sentences why streaming matters for chat latency."
DEMO_TTFT_MS = 300.0
DEMO_ITL_MS = 15.0
# gpt-oss-20b-like at low load: 100 ms to the first token, 5 ms a token (200 tokens/s a user).
BENCH_MOCK_ARGS = ("--ttft-ms", "100", "--itl-ms", "5", "--stream-interval", "1", "--quiet")
# Three levels at the bench's default request count (4 a slot, at least 8): about 0.8 s a
# request, so `make demo-bench` takes seconds, not minutes (docs/benchmark.md measures it).
BENCH_ARGS = ("--concurrency", "1,8,32", "--output-tokens", "128")
COLD_START_MARGIN_S = 30.0  # the chat waits this much longer for /health than the cold start


def _say(message: str) -> None:
    sys.stderr.write(f"demo: {message}\n")


def run_chat(prompt: str, cold_start_s: float) -> int:
    """The mock in a thread of this process; the chat CLI against it (waiting out a cold start
    when there is one: the mock answers 503 until then)."""
    config = MockConfig(
        ttft_ms=DEMO_TTFT_MS,
        itl_ms=DEMO_ITL_MS,
        cold_start_s=cold_start_s,
        cold_start_mode="unhealthy",
    )
    with run_mock_in_thread(config) as mock:
        _say(f"mock vLLM {config.version} (gpt-oss) on {mock.url}")
        argv = ["chat", mock.url, prompt, "--reasoning-effort", "low"]
        if cold_start_s > 0:
            argv += ["--wait", f"{cold_start_s + COLD_START_MARGIN_S:g}s"]
        return cli.main(argv)


def run_bench(extra: Sequence[str]) -> int:
    """The mock in another process; the load benchmark against it."""
    with spawn_mock_process(BENCH_MOCK_ARGS) as mock:
        _say(f"mock vLLM (gpt-oss) on {mock.url}, pid {mock.pid}")
        return cli.main(["bench", mock.url, *BENCH_ARGS, *extra])


def main(argv: Sequence[str] | None = None) -> int:
    """``demo chat [PROMPT]`` or ``demo bench [extra bench options]``."""
    parser = argparse.ArgumentParser(prog="python -m gptoss_modal.demo")
    sub = parser.add_subparsers(dest="mode", required=True)
    chat = sub.add_parser("chat", help="chat with the mock through gptoss-modal chat")
    chat.add_argument("prompt", nargs="?", default=DEFAULT_PROMPT)
    chat.add_argument("--cold-start-s", type=float, default=0.0, help="simulate a cold start")
    sub.add_parser("bench", help="run gptoss-modal bench against the mock (more options pass on)")
    # Options after `bench` belong to `gptoss-modal bench` (--json, --plot, --budgets...).
    args, extra = parser.parse_known_args(argv)
    if args.mode == "chat":
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return run_chat(args.prompt, args.cold_start_s)
    return run_bench(extra)


if __name__ == "__main__":
    sys.exit(main())
