"""The ``gptoss-modal`` command: one subcommand per job, each in its own module.

Every subcommand returns an exit code instead of calling ``sys.exit`` so it can be tested
in-process. Exit codes: 0 success, 1 the server or the run failed, 2 bad usage or config,
130 interrupted, 141 the reader of stdout went away (``gptoss-modal chat ... | head``).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from gptoss_modal._exceptions import AuthenticationError, ConfigError, GptossModalError
from gptoss_modal.serve.loading import check_env_names

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: how a Unix tool ends when its reader goes away

# Each module defines ``register(subparsers)`` and sets ``func(args) -> int`` on its parsers.
# Heavy imports (aiohttp, modal, matplotlib) stay inside those functions.
_SUBCOMMAND_MODULES = (
    "gptoss_modal.cli.command",
    "gptoss_modal.cli.health",
    "gptoss_modal.cli.chat",
    "gptoss_modal.cli.mock",
    "gptoss_modal.cli.bench",
)
# A group's subcommand when its first argument is none of its own: `bench URL` is
# `bench run URL`, so `bench compare` (and any later one) is a subcommand with its own help.
DEFAULT_SUBCOMMANDS = {"bench": "run"}
_HELP = ("-h", "--help")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from gptoss_modal._version import __version__

    parser = argparse.ArgumentParser(
        prog="gptoss-modal",
        description="gpt-oss on vLLM on Modal: build the serve command, chat, mock, benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"gptoss-modal {__version__}")
    subparsers = parser.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)
    for name in _SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The subcommands a parser has, by name (none for a parser without any)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def with_default_subcommands(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    """``argv`` with a group's default subcommand spelled out (``bench URL`` -> ``bench run
    URL``) when the group's first argument names none of its subcommands (nor asks for help)."""
    out = list(argv)
    first = next((i for i, arg in enumerate(out) if not arg.startswith("-")), None)
    if first is None or out[first] not in DEFAULT_SUBCOMMANDS:
        return out
    group = subcommands(parser).get(out[first])
    following = out[first + 1] if first + 1 < len(out) else None
    if group is not None and following not in (*subcommands(group), *_HELP):
        out.insert(first + 1, DEFAULT_SUBCOMMANDS[out[first]])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code; never a traceback for an error of ours, an
    interrupt (130) or a reader that went away (``| head``: 141, quietly)."""
    try:
        code = _main(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()  # a reader that left shows here, not as Python exits
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null: Python flushes it again as it exits, and would complain."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):  # a captured stdout in tests has no descriptor
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def _main(argv: Sequence[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(with_default_subcommands(parser, argv))
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 on --help
        return int(exc.code or 0)
    try:
        check_env_names(os.environ)  # a misspelt GPTOSS_* variable would be silently ignored
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"gptoss-modal: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except AuthenticationError as exc:
        print(f"gptoss-modal: error: {exc}", file=sys.stderr)
        print(f"gptoss-modal: {auth_hint()}", file=sys.stderr)
        return EXIT_FAILURE
    except GptossModalError as exc:
        print(f"gptoss-modal: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


def auth_hint() -> str:
    """What to do about a 401, in the client's own options and variables (which the stream
    layer's message cannot know)."""
    from gptoss_modal.deploy.settings import CLIENT_API_KEY_ENV, PROXY_KEY_ENV, PROXY_SECRET_ENV

    return (
        f"give the server's API key with --api-key KEY or ${CLIENT_API_KEY_ENV}; behind Modal "
        f"proxy auth, set ${PROXY_KEY_ENV} and ${PROXY_SECRET_ENV} (or --header 'Modal-Key: ...')"
    )
