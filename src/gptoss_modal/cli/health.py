"""``gptoss-modal health URL [--wait 30m]``: check ``/health`` once, or keep checking through a
cold start, with a spinner showing the last status on stderr (when it is a terminal).
Sends ``--header`` values and Modal proxy auth from ``$GPTOSS_MODAL_KEY``/``$GPTOSS_MODAL_SECRET``.
Exit codes: 0 healthy, 1 the server failed or did not answer in time, 2 bad usage. The aiohttp
client is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from gptoss_modal._exceptions import ConnectError, HealthTimeout
from gptoss_modal.cli import EXIT_FAILURE, EXIT_OK
from gptoss_modal.cli._options import (
    add_header_option,
    add_key_option,
    parse_duration,
    request_headers,
)
from gptoss_modal.display import wait_with_spinner


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``health``."""
    health = subparsers.add_parser(
        "health",
        help="check a server's /health, or wait for it through a cold start",
        description="Check URL/health once, or with --wait keep checking until it answers 200.",
    )
    health.add_argument("url", help="the server's root URL (a trailing /v1 is fine)")
    health.add_argument(
        "--wait",
        type=parse_duration,
        default=0.0,
        metavar="DURATION",
        help="keep checking for up to this long, e.g. 30m (default: check once)",
    )
    add_key_option(health)
    add_header_option(health)
    health.set_defaults(func=run_health)


def run_health(args: argparse.Namespace) -> int:
    """``gptoss-modal health``."""
    return asyncio.run(_health(args))


async def _health(args: argparse.Namespace) -> int:
    from gptoss_modal.stream.client import Client

    headers = request_headers(args.header, os.environ)
    async with Client(args.url, api_key=args.api_key, headers=headers) as client:
        try:
            progress = await wait_with_spinner(client, args.wait, sys.stderr)
        except (ConnectError, HealthTimeout) as exc:
            return report_connection_failure(exc, args.wait)
    checks = "1 check" if progress.attempts == 1 else f"{progress.attempts} checks"
    print(f"{client.base_url} is healthy ({checks}, {progress.elapsed_s:.1f} s)")
    return EXIT_OK


def report_connection_failure(exc: ConnectError | HealthTimeout, wait_s: float | None) -> int:
    """Print a connection failure with what to try next; the run failed."""
    from gptoss_modal.stream.client import worth_waiting

    print(f"gptoss-modal: error: {exc}", file=sys.stderr)
    if not wait_s and worth_waiting(exc):  # not for a host that does not resolve, or TLS
        print(
            "gptoss-modal: is the server running? To wait for it to start (a Modal cold start "
            "can take minutes), add --wait 30m",
            file=sys.stderr,
        )
    return EXIT_FAILURE
