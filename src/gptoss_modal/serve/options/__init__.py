"""What each supported vLLM version accepts: its ``vllm serve`` options, ``VLLM_*`` variables
and KV cache dtypes, from one generated module per version (``scripts/vllm-options.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal, Protocol, get_args

from gptoss_modal.serve.options import v0_13_0, v0_33_0

__all__ = [
    "DEFAULT_VLLM_VERSION",
    "VLLM_VERSIONS",
    "OptionTable",
    "VllmOption",
    "VllmVersion",
    "option_table",
]

VllmVersion = Literal["0.13.0", "0.33.0"]
VLLM_VERSIONS: tuple[VllmVersion, ...] = get_args(VllmVersion)
# 0.33.0 streams gpt-oss through its harmony parser token by token, which fixes 0.13.0's lost
# and mislabelled text under --stream-interval > 1 or EAGLE3 (vllm#31501, #30204).
DEFAULT_VLLM_VERSION: VllmVersion = "0.33.0"


@dataclass(frozen=True)
class VllmOption:
    """One ``vllm serve`` option: its parser destination, spellings, arity and choices."""

    dest: str
    spellings: tuple[str, ...]
    arity: str  # "0" switch, "1" one value, "+" one or more, "?" zero or one
    choices: tuple[str, ...] | None


@dataclass(frozen=True)
class OptionTable:
    """One vLLM version's ``vllm serve`` options by spelling, its variables and KV dtypes."""

    version: VllmVersion
    options: Mapping[str, VllmOption]
    env_vars: frozenset[str]
    kv_cache_dtypes: tuple[str, ...]


class _GeneratedTable(Protocol):
    """What a generated ``v<version>`` module holds."""

    VLLM_VERSION: str
    OPTION_GROUPS: tuple[tuple[str, tuple[str, ...], str, tuple[str, ...] | None], ...]
    ENV_VARS: frozenset[str]
    KV_CACHE_DTYPES: tuple[str, ...]


def _table(module: _GeneratedTable) -> OptionTable:
    options: dict[str, VllmOption] = {}
    for dest, spellings, arity, choices in module.OPTION_GROUPS:
        option = VllmOption(dest, spellings, arity, choices)
        for spelling in spellings:
            options[spelling] = option
    version = next(v for v in VLLM_VERSIONS if v == module.VLLM_VERSION)
    return OptionTable(version, MappingProxyType(options), module.ENV_VARS, module.KV_CACHE_DTYPES)


_TABLES: dict[str, OptionTable] = {t.version: t for t in map(_table, (v0_13_0, v0_33_0))}
assert tuple(_TABLES) == VLLM_VERSIONS, "one generated table per supported version"


def option_table(version: VllmVersion) -> OptionTable:
    """The generated table of ``version`` (one of :data:`VLLM_VERSIONS`)."""
    return _TABLES[version]
