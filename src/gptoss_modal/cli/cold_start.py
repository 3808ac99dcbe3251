"""``gptoss-modal bench cold-start URL``: time to healthy, TTFT and first content after a cold
start, several times, with percentiles (see :mod:`gptoss_modal.bench.cold_start`).

``register(subparsers)`` adds a ``cold-start`` parser to any subparsers (the ``bench`` group's, at
merge); ``python -m gptoss_modal.cli.cold_start URL ...`` runs it on its own. Exit codes: 0 every
sample answered, 1 a sample's request failed or the server never became healthy, 2 bad usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gptoss_modal.cli import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from gptoss_modal.cli._options import (
    add_header_option,
    add_key_option,
    parse_duration,
    request_headers,
)

if TYPE_CHECKING:
    from gptoss_modal.bench.cold_start import ColdStartSample

DEFAULT_IDLE = "11m"  # the app's default scale-down window is 10 minutes
EPILOG = """\
examples:
  gptoss-modal bench cold-start https://WORKSPACE--gptoss-modal-serve.modal.run --runs 3
  gptoss-modal bench cold-start URL --modal-app gptoss-modal --start-mode snapshot --json cs.json

the metrics and the budgets: docs/modal-app.md (Cold starts)
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``cold-start``."""
    p = subparsers.add_parser(
        "cold-start",
        help="measure cold starts: time to healthy, TTFT, first content (percentiles)",
        description=(
            "Make the deployment cold (wait out its scale-down window, or with Modal "
            "credentials wait until it has no container), then time /health and one streamed "
            "chat from the first request; repeat, and report percentiles."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(p)
    p.set_defaults(func=run)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``cold-start``."""
    p.add_argument("url", metavar="URL", help="the server's root URL")
    p.add_argument("--runs", type=int, default=3, help="cold starts to measure (default: 3)")
    p.add_argument(
        "--idle",
        type=parse_duration,
        default=None,
        help=f"wait this long before each sample (default without --modal-app: {DEFAULT_IDLE})",
    )
    p.add_argument(
        "--modal-app",
        help="with Modal credentials: wait until this app's function has no container instead",
    )
    p.add_argument(
        "--modal-function",
        default="serve",
        help="the function whose containers --modal-app counts (default: serve)",
    )
    p.add_argument(
        "--start-mode",
        choices=("plain", "snapshot", "unknown"),
        default="unknown",
        help="how the deployment starts, recorded in the JSON (default: unknown)",
    )
    p.add_argument(
        "--poll", type=parse_duration, default=1.0, help="between /health checks (default: 1s)"
    )
    p.add_argument(
        "--health-timeout", type=parse_duration, default=1800.0, help="give up (default: 30m)"
    )
    p.add_argument("--model", default=None, help="served model name (default: the server's)")
    p.add_argument("--json", type=Path, help="write the run's JSON here")
    add_key_option(p)
    add_header_option(p)


def run(args: argparse.Namespace) -> int:
    """Measure, print one line per sample and the percentiles, write the JSON."""
    from gptoss_modal.bench.cold_start import fixed_idle, measure_cold_starts, modal_idle

    if args.poll <= 0:
        print("gptoss-modal: error: --poll must be more than 0", file=sys.stderr)
        return EXIT_USAGE
    if args.modal_app:
        make_cold = modal_idle(args.modal_app, args.modal_function)
    else:
        make_cold = fixed_idle(args.idle if args.idle is not None else parse_duration(DEFAULT_IDLE))

    def show(index: int, sample: ColdStartSample) -> None:
        print(f"run {index + 1}: {_line(sample)}", flush=True)

    result = asyncio.run(
        measure_cold_starts(
            args.url,
            make_cold=make_cold,
            runs=args.runs,
            api_key=args.api_key,
            headers=request_headers(args.header, os.environ),
            model=args.model,
            start_mode=args.start_mode,
            poll_s=args.poll,
            health_timeout_s=args.health_timeout,
            on_sample=show,
        )
    )
    for name, stats in result.summary().items():
        cells = "  ".join(f"{k} {v:.2f}" for k, v in stats.items())
        print(f"{name:<16} {cells}")
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return EXIT_FAILURE if any(s.error for s in result.samples) else EXIT_OK


def _line(sample: ColdStartSample) -> str:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    text = (
        f"healthy {seconds(sample.healthy_s)}, first token {seconds(sample.ttft_s)}, "
        f"first content {seconds(sample.first_content_s)} ({sample.health_checks} checks)"
    )
    return text + (f"; error: {sample.error}" if sample.error else "")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cold-start`` on its own (before it is wired into ``gptoss-modal bench``)."""
    from gptoss_modal._exceptions import ConfigError, GptossModalError

    parser = argparse.ArgumentParser(prog="gptoss-modal bench cold-start", epilog=EPILOG)
    add_arguments(parser)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        return run(args)
    except ConfigError as exc:
        print(f"gptoss-modal: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GptossModalError as exc:
        print(f"gptoss-modal: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
