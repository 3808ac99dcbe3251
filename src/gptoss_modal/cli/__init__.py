"""The ``gptoss-modal`` command: one subcommand per job, each in its own module.

Every subcommand returns an exit code instead of calling ``sys.exit`` so it can be tested
in-process. Exit codes: 0 success, 1 the server or the run failed, 2 bad usage or config,
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from gptoss_modal._exceptions import ConfigError, GptossModalError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Each module defines ``register(subparsers)`` and sets ``func(args) -> int`` on its parsers.
# Heavy imports (aiohttp, modal, matplotlib) stay inside those functions.
_SUBCOMMAND_MODULES = (
    "gptoss_modal.cli.command",
    "gptoss_modal.cli.health",
    "gptoss_modal.cli.chat",
    "gptoss_modal.cli.mock",
    "gptoss_modal.cli.bench",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="gptoss-modal",
        description="gpt-oss on vLLM on Modal: build the serve command, chat, mock, benchmark.",
    )
    subparsers = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"gptoss-modal: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except GptossModalError as exc:
        print(f"gptoss-modal: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code
