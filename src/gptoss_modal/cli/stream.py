"""Placeholder: the `stream` subcommands are registered here."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register no subcommands yet."""
