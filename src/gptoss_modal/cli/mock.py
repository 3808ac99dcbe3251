"""``gptoss-modal mock``: run the mock vLLM server for gpt-oss (no GPU, no account), serving
vLLM 0.33.0's wire format by default or 0.13.0's (``--vllm 0.13.0``).

It prints one line with its URL first, then logs one line per request to stderr. Its options
are ``MockConfig``'s fields, read from the dataclass (type, default, help kept beside each
field), so a new field is a new option.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import errno
import logging
import sys
import types
import typing
from typing import Any, Literal

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.cli import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from gptoss_modal.testing._config import CliOption, MockConfig, cli_option

_ConfigOption = tuple[dataclasses.Field[Any], Any, CliOption]


def config_options() -> list[_ConfigOption]:
    """Each ``MockConfig`` field that has an option, with its resolved type and CLI details."""
    hints = typing.get_type_hints(MockConfig)
    out = []
    for config_field in dataclasses.fields(MockConfig):
        option = cli_option(config_field)
        if option.hidden is None:
            out.append((config_field, hints[config_field.name], option))
    return out


def _optional_of(hint: Any) -> Any:
    """``X`` for ``X | None``, else None."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        rest = [a for a in typing.get_args(hint) if a is not type(None)]
        return rest[0] if len(rest) == 1 else None
    return None


def _add_option(
    p: argparse.ArgumentParser, config_field: dataclasses.Field[Any], hint: Any, option: CliOption
) -> None:
    """One ``MockConfig`` field as an option: booleans as switches away from their default,
    literals as choices, tuples as lists, ``X | None`` as an optional ``X``."""
    name = config_field.name
    default = option.default if option.has_default else config_field.default
    spelled = "--" + name.replace("_", "-")
    if hint is bool:
        flag = option.flag or (f"--no-{name.replace('_', '-')}" if default else spelled)
        action = "store_false" if default else "store_true"
        p.add_argument(flag, dest=name, action=action, default=default, help=option.help)
        return
    flag = option.flag or spelled
    metavar = flag.removeprefix("--").replace("-", "_").upper()
    shown = f"{option.help} (default: {_shown(default)})"
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        p.add_argument(flag, dest=name, choices=choices, default=default, help=shown)
    elif origin is tuple:
        item = typing.get_args(hint)[0]
        items = list(typing.cast(tuple[Any, ...], default))
        p.add_argument(
            flag, dest=name, nargs="+", type=item, default=items, metavar=metavar, help=shown
        )
    else:
        kind = _optional_of(hint) or hint
        p.add_argument(flag, dest=name, type=kind, default=default, metavar=metavar, help=shown)


def _shown(default: object) -> str:
    if isinstance(default, tuple):
        return " ".join(map(str, default)) or "none"
    return "none" if default is None else str(default)


MAX_PORT = 65535


def port_number(text: str) -> int:
    """An argparse ``type``: a TCP port, 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a port: use a whole number from 0 to {MAX_PORT} (0 picks a free one)"
        )
    return port


def option_of(field: str) -> str:
    """The option that sets a ``MockConfig`` field (``fault.seconds`` is ``--fault``'s)."""
    name = field.split(".")[0]
    for config_field, _, option in config_options():
        if config_field.name == name:
            return option.flag or "--" + name.replace("_", "-")
    return name


def config_from_args(args: argparse.Namespace) -> MockConfig:
    """The ``MockConfig`` the parsed options describe (argparse's lists become tuples)."""
    values: dict[str, Any] = {}
    for config_field, hint, _ in config_options():
        value = getattr(args, config_field.name)
        origin: object = typing.get_origin(hint)
        values[config_field.name] = tuple(value) if origin is tuple else value
    return MockConfig(**values)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register ``mock``."""
    p = subparsers.add_parser(
        "mock",
        help="run a mock vLLM server for gpt-oss (wire-exact streams, faults)",
        description=(
            "Serve /health, /version, /metrics, /v1/models, /v1/chat/completions and "
            "/v1/responses as vLLM "
            "serves gpt-oss (0.33.0 by default, or --vllm 0.13.0), with configurable timing "
            "and injected faults. See docs/mock-server.md."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument(
        "--port", type=port_number, default=8000, help="port 0 to 65535 (0 picks a free one)"
    )
    for config_field, hint, option in config_options():
        _add_option(p, config_field, hint, option)
    p.add_argument("--quiet", action="store_true", help="do not log requests")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted."""
    from gptoss_modal.testing.mock_server import MockVLLM

    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"gptoss-modal mock: error: {option_of(exc.field)}: {exc}", file=sys.stderr)
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
        if exc.errno != errno.EADDRINUSE:
            raise
        print(
            f"gptoss-modal mock: error: port {args.port} on {args.host} is already in use: stop "
            "what is listening there, or pick another with --port (0 picks a free one)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    except KeyboardInterrupt:  # Ctrl-C: the server stopped cleanly, and says it was interrupted
        return EXIT_INTERRUPTED
    return EXIT_OK
