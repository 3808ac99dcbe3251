"""``gptoss-modal mock``: run the mock vLLM 0.13.0 server for gpt-oss (no GPU, no account).

It prints one line with its URL first, then logs one line per request to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from typing import Any

from gptoss_modal.cli import EXIT_OK, EXIT_USAGE


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``mock``."""
    p = subparsers.add_parser(
        "mock",
        help="run a mock vLLM 0.13.0 server for gpt-oss (wire-exact streams, faults)",
        description=(
            "Serve /health, /version, /metrics, /v1/models and /v1/chat/completions as vLLM "
            "0.13.0 serves gpt-oss, with configurable timing and injected faults. "
            "See docs/mock-server.md."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (0 picks a free one)")
    p.add_argument("--ttft-ms", type=float, default=200.0, help="time to first token (ms)")
    p.add_argument("--itl-ms", type=float, default=20.0, help="time per output token (ms)")
    p.add_argument("--jitter-ms", type=float, default=0.0, help="uniform jitter per step (ms)")
    p.add_argument("--seed", type=int, default=0, help="seed for text, jitter and faults")
    p.add_argument("--stream-interval", type=int, default=1, help="vLLM's --stream-interval")
    p.add_argument(
        "--served-model-name",
        nargs="+",
        default=["openai/gpt-oss-20b", "llm"],
        help="served names (default: openai/gpt-oss-20b llm)",
    )
    p.add_argument("--max-model-len", type=int, default=32768)
    p.add_argument("--api-key", nargs="+", default=[], help="require one of these keys on /v1/*")
    p.add_argument("--content-tokens", type=int, default=64, help="content length of a reply")
    p.add_argument(
        "--reasoning-shape",
        choices=("v0.13", "v0.16"),
        default="v0.13",
        help="v0.13: reasoning and reasoning_content; v0.16: reasoning only",
    )
    p.add_argument(
        "--no-tool-parser",
        action="store_true",
        help="serve as without --tool-call-parser openai (non-streamed tool calls stay text)",
    )
    p.add_argument(
        "--num-speculative-tokens", type=int, default=0, help="draft tokens per step (0: off)"
    )
    p.add_argument("--spec-acceptance-rate", type=float, default=0.7)
    p.add_argument(
        "--fault",
        default=None,
        help="server-wide fault NAME[:key=value,...]: error, drop, stall, malformed, "
        "http-500, http-503, http-429, dead (keys: after, rate, seconds, code, message)",
    )
    p.add_argument("--cold-start-s", type=float, default=0.0, help="seconds before serving")
    p.add_argument(
        "--cold-start-mode",
        choices=("refuse", "unhealthy"),
        default="refuse",
        help="during the cold start: refuse connections, or answer 503",
    )
    p.add_argument(
        "--one-event-per-write",
        action="store_true",
        help="write each event on its own, as vLLM does (default: coalesce events that are due)",
    )
    p.add_argument("--quiet", action="store_true", help="do not log requests")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

    try:
        config = MockConfig(
            served_model_names=tuple(args.served_model_name),
            max_model_len=args.max_model_len,
            api_keys=tuple(args.api_key),
            ttft_ms=args.ttft_ms,
            itl_ms=args.itl_ms,
            jitter_ms=args.jitter_ms,
            seed=args.seed,
            stream_interval=args.stream_interval,
            content_tokens=args.content_tokens,
            reasoning_shape=args.reasoning_shape,
            tool_parser=not args.no_tool_parser,
            num_speculative_tokens=args.num_speculative_tokens,
            spec_acceptance_rate=args.spec_acceptance_rate,
            fault=args.fault,
            cold_start_s=args.cold_start_s,
            cold_start_mode=args.cold_start_mode,
            coalesce_writes=not args.one_event_per_write,
        )
    except ValueError as exc:
        print(f"gptoss-modal mock: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not args.quiet:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s mock %(message)s")
        logging.getLogger("gptoss_modal.mock").setLevel(logging.INFO)

    async def serve() -> None:
        server = MockVLLM(config, host=args.host, port=args.port)
        await server.start()
        print(f"mock vLLM {config.version} listening on {server.url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    try:
        asyncio.run(serve())
    except OSError as exc:
        print(f"gptoss-modal mock: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        pass
    return EXIT_OK
