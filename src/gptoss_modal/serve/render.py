"""What a resolved ServeConfig's fields become in its vLLM version: argv tokens and ``VLLM_*``
variables, written from the one flag table, and the check that the version can express them.

Pure: no vLLM import. :mod:`gptoss_modal.serve.config` runs :func:`check_expressible` while
resolving, so a config that asks for something its vLLM lacks never constructs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.flags import ENV_VARS, FLAGS, Flag, versions_with
from gptoss_modal.serve.options import VLLM_VERSIONS, VllmVersion, option_table
from gptoss_modal.serve.recipes import RECIPES, SPECULATIVE_METHOD

if TYPE_CHECKING:
    from gptoss_modal.serve.config import ServeConfig


def render_flags(c: ServeConfig) -> list[str]:
    """The modelled flags of a resolved config, in the table's order (no model, no extras)."""
    tokens: list[str] = []
    for row in FLAGS:
        tokens += _write(row, c)
    return tokens


def render_env(c: ServeConfig) -> dict[str, str]:
    """The ``VLLM_*`` variables a resolved config needs (only where they belong)."""
    recipe = RECIPES[_version(c)]
    env: dict[str, str] = {}
    if c.mxfp8_moe and recipe.mxfp8_moe_via == "env":
        env.update(recipe.mxfp8_moe_env)
    for var in ENV_VARS:
        value = getattr(c, var.attr)
        if var.kind == "one" and value:
            env[var.name] = "1"
        elif var.kind == "str" and value is not None:
            env[var.name] = str(value)
    return env


def check_expressible(c: ServeConfig) -> None:
    """ConfigError, naming the field, the version and what to do, for a setting the config's
    vLLM version has no flag or variable for (never a silently dropped flag or dead variable)."""
    version = _version(c)
    table = option_table(version)
    for row in FLAGS:
        tokens = _write(row, c)
        if tokens and tokens[0] not in table.options:
            field = row.owned_by.split(" ")[0]
            others = versions_with(tokens[0])
            raise ConfigError(
                field, getattr(c, field, None), _elsewhere(tokens[0], version, others, field)
            )
    for name in render_env(c):
        if name not in table.env_vars:
            owner = next((v.attr for v in ENV_VARS if v.name == name), "mxfp8_moe")
            others = tuple(v for v in VLLM_VERSIONS if name in option_table(v).env_vars)
            raise ConfigError(owner, getattr(c, owner), _elsewhere(name, version, others, owner))


def _elsewhere(what: str, version: VllmVersion, others: tuple[VllmVersion, ...], field: str) -> str:
    where = f"it exists in vLLM {' and '.join(others)}" if others else "no supported vLLM has it"
    fix = f"set vllm_version={others[-1]!r} or leave {field} unset" if others else "leave it unset"
    return f"a setting vLLM {version} can express ({what} is not in vLLM {version}; {where}): {fix}"


def _version(c: ServeConfig) -> VllmVersion:
    assert c.vllm_version is not None, "render a resolved config"
    return c.vllm_version


def _write(row: Flag, c: ServeConfig) -> list[str]:
    """The tokens one flag of the table contributes for ``c`` (none when it is left unset)."""
    if row.kind == "json":
        data = _JSON_WRITERS[row.flag](c)
        return [row.flag, json.dumps(data)] if data else []
    value = getattr(c, row.attr)
    if row.kind == "switch":
        assert row.off is not None
        return [row.flag if value else row.off]
    if row.kind == "present":
        return [row.flag] if value else []
    if row.kind == "const":
        assert row.const is not None
        return [row.flag, row.const] if value else []
    if value is None:
        return []
    if row.kind == "names":
        return [row.flag, *value]
    if row.kind == "joined":
        return [row.flag, value if isinstance(value, str) else ",".join(value)]
    return [row.flag, str(value)]


def _compilation_config(c: ServeConfig) -> dict[str, Any]:
    passes = {
        name: value
        for name, value in (
            ("fuse_allreduce_rms", c.fuse_allreduce_rms),
            ("eliminate_noops", c.eliminate_noops),
        )
        if value is not None
    }
    return {"pass_config": passes} if passes else {}


def _speculative_config(c: ServeConfig) -> dict[str, Any]:
    if not c.speculative:
        return {}
    return {
        "model": c.speculative_model,
        "num_speculative_tokens": c.num_speculative_tokens,
        "method": SPECULATIVE_METHOD,
    }


def _quantization_config(c: ServeConfig) -> dict[str, Any]:
    recipe = RECIPES[_version(c)]
    if c.mxfp8_moe and recipe.mxfp8_moe_via == "quantization_config":
        return dict(recipe.mxfp8_moe_quantization)
    return {}


_JSON_WRITERS: dict[str, Callable[[ServeConfig], dict[str, Any]]] = {
    "--compilation-config": _compilation_config,
    "--speculative-config": _speculative_config,
    "--quantization-config": _quantization_config,
}
