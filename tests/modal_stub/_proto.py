"""The two pieces of the protobuf runtime the stub needs, imported in one place: the runtime
ships without type stubs (modal_proto's own messages are typed; these are not)."""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Message", "empty"]

Message: Any = importlib.import_module("google.protobuf.message").Message  # every message's base
_EMPTY: Any = importlib.import_module("google.protobuf.empty_pb2").Empty


def empty() -> Any:
    """A ``google.protobuf.Empty``: the reply of methods that only acknowledge."""
    return _EMPTY()
