"""``gptoss-modal command``: print the ``vllm serve`` argv and environment a config produces."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from typing import Any

from gptoss_modal.cli import EXIT_OK
from gptoss_modal.serve.command import build_vllm_command, vllm_env
from gptoss_modal.serve.config import load_config, parse_overrides
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VLLM_VERSIONS
from gptoss_modal.serve.presets import PROFILES


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Add the ``command`` subcommand."""
    parser = subparsers.add_parser(
        "command",
        help="print the vllm serve command for a config",
        description=(
            "Print the exact `vllm serve` argv (shell-quoted) and environment for a config. "
            "Precedence: defaults < --config FILE < GPTOSS_* environment < these flags."
        ),
    )
    parser.add_argument("--model", help="openai/gpt-oss-20b (default) or openai/gpt-oss-120b")
    parser.add_argument("--gpu", help="GPU type and count, e.g. B200:1 (default), H100:2")
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="tuning profile (default balanced; seed reproduces the seed deployment)",
    )
    parser.add_argument(
        "--vllm",
        dest="vllm_version",
        choices=VLLM_VERSIONS,
        help=f"vLLM version to build for (default {DEFAULT_VLLM_VERSION}; seed pins 0.13.0)",
    )
    parser.add_argument(
        "--tool-server",
        metavar="SERVERS",
        help="built-in Responses tools: 'demo' (vLLM's browser and python tools) or MCP "
        "servers host:port,host:port (default: none; see docs/configuration.md first)",
    )
    parser.add_argument(
        "--response-store",
        action="store_true",
        default=None,
        help="keep Responses in the replica's memory (VLLM_ENABLE_RESPONSES_API_STORE; "
        "grows without bound, see docs/configuration.md)",
    )
    parser.add_argument("--config", metavar="FILE", help="TOML file with a [serve] table")
    parser.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="set any ServeConfig field, e.g. --set max_inputs=64 (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print argv, env and config as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Resolve the config and print its command."""
    overrides = parse_overrides(args.set)
    for name in ("model", "gpu", "profile", "vllm_version", "tool_server", "response_store"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    config = load_config(
        args.config, env=os.environ, overrides=overrides, overrides_source="command line"
    )
    argv = build_vllm_command(config)
    env = vllm_env(config)
    for note in config.advisories():
        print(f"gptoss-modal: note: {note}", file=sys.stderr)
    if args.json:
        payload = {"argv": argv, "env": env, "config": config.resolved().to_dict()}
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    for key, value in env.items():
        print(f"export {key}={shlex.quote(value)}")
    print(shlex.join(argv))
    return EXIT_OK
