"""The ``vllm serve`` argv and environment for a ServeConfig, and the way back.

Pure and deterministic: no shell strings, no I/O, no vLLM import. Both directions read the one
flag table, ``serve.flags.FLAGS``, whose order follows the seed deployment so the default command
can be compared with it token for token.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from gptoss_modal._exceptions import CommandParseError, ConfigError
from gptoss_modal.serve.config import GPUSpec, ServeConfig
from gptoss_modal.serve.flags import BY_SPELLING, ENV_VARS, Flag
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VllmVersion, option_table
from gptoss_modal.serve.recipes import RECIPES, SPECULATIVE_METHOD
from gptoss_modal.serve.render import render_env, render_flags

__all__ = ["build_vllm_command", "parse_vllm_command", "vllm_env"]


def build_vllm_command(config: ServeConfig) -> list[str]:
    """The exact ``vllm serve`` argv for ``config`` (resolved first) in its vLLM version."""
    c = config.resolved()
    return ["vllm", "serve", c.model, *render_flags(c), *c.extra_args]


def vllm_env(config: ServeConfig) -> dict[str, str]:
    """The ``VLLM_*`` variables ``config`` needs in its vLLM version (only where they belong)."""
    return render_env(config.resolved())


# ---- the way back -------------------------------------------------------------------------


def parse_vllm_command(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    gpu: str | None = None,
    max_inputs: int | Literal["tied"] | None = "tied",
    vllm_version: VllmVersion = DEFAULT_VLLM_VERSION,
) -> ServeConfig:
    """Read an argv made by :func:`build_vllm_command` back into an explicit ServeConfig.

    Neither the vLLM version nor the GPU type is on vLLM's command line, so pass
    ``vllm_version`` (default: the package's) and ``gpu``; without ``gpu`` the MXFP8 MoE
    kernel (Blackwell-only) means B200. Its count must equal the tensor parallel size.
    ``max_inputs`` (Modal's concurrency, not a vLLM flag) is by default ``"tied"`` to the CUDA
    graph capture size, as resolution ties them. Flags after the first one the config does not
    model are kept, in order, as ``extra_args``.
    """
    tokens = list(argv)
    if tokens[:2] != ["vllm", "serve"] or len(tokens) < 3 or tokens[2].startswith("-"):
        raise CommandParseError("argv", tokens[:3], "'vllm serve MODEL ...'")
    values: dict[str, Any] = {
        "model": tokens[2],
        "profile": None,
        "speculative": False,
        "vllm_version": vllm_version,
        "mxfp8_moe": False,
    }
    options = option_table(vllm_version).options
    seen: set[str] = set()
    i = 3
    while i < len(tokens):
        found = BY_SPELLING.get(tokens[i])
        if found is None or tokens[i] not in options:
            values["extra_args"] = tuple(tokens[i:])
            break
        dest = options[tokens[i]].dest
        if dest in seen:
            raise CommandParseError("argv", tokens[i], "each option at most once")
        seen.add(dest)
        i = _read(*found, tokens, i + 1, values)
    if ("tool_call_parser" in seen) != ("enable_auto_tool_choice" in seen):
        raise CommandParseError(
            "argv", "tool calling", "--tool-call-parser openai with --enable-auto-tool-choice"
        )
    from_env = _read_env(env, vllm_version, values) if env is not None else set()
    values["gpu"] = _gpu_for(values.pop("tensor_parallel_size", 1), values["mxfp8_moe"], gpu)
    if max_inputs != "tied":
        values["max_inputs"] = max_inputs
    else:
        values["max_inputs"] = values.get("max_cudagraph_capture_size")
    try:
        config = ServeConfig(**values)
    except ConfigError as exc:
        if exc.field in from_env:  # the variable was wrong, not the field someone typed
            raise CommandParseError("env", dict(env or {}), exc.allowed) from exc
        raise CommandParseError(exc.field, exc.value, exc.allowed, source="argv") from exc
    if env is not None and dict(env) != vllm_env(config):
        raise CommandParseError(
            "env", dict(env), f"the environment for {config.gpu}: {vllm_env(config)}"
        )
    return config


def _read_env(env: Mapping[str, str], version: VllmVersion, values: dict[str, Any]) -> set[str]:
    """Read the config's ``VLLM_*`` variables into ``values``; return the fields they set."""
    recipe = RECIPES[version]
    known = {var.name: var for var in ENV_VARS}
    fields: set[str] = set()
    for name, text in env.items():
        if name in recipe.mxfp8_moe_env and recipe.mxfp8_moe_via == "env":
            values["mxfp8_moe"] = text == recipe.mxfp8_moe_env[name]
            fields.add("mxfp8_moe")
        elif name in known:
            var = known[name]
            values[var.attr] = text == "1" if var.kind == "one" else text
            fields.add(var.attr)
        else:
            raise CommandParseError(
                "env", name, f"a variable the config sets in vLLM {version}: {_env_names(version)}"
            )
    return fields


def _env_names(version: VllmVersion) -> str:
    recipe = RECIPES[version]
    names = [*recipe.mxfp8_moe_env, *(var.name for var in ENV_VARS)]
    return ", ".join(n for n in names if n in option_table(version).env_vars)


_CONVERTERS: dict[str, type] = {"str": str, "int": int, "float": float}


def _read(row: Flag, switch: bool, tokens: list[str], i: int, values: dict[str, Any]) -> int:
    """Read one flag's value(s) from ``tokens[i:]`` into ``values``; return the next index."""
    if row.kind == "switch":
        values[row.attr] = switch
        return i
    if row.kind == "present":
        values[row.attr] = True
        return i
    if row.kind == "names":
        names = []
        while i < len(tokens) and not tokens[i].startswith("-"):
            names.append(tokens[i])
            i += 1
        values[row.attr] = tuple(names)
        return i
    if i >= len(tokens):
        raise CommandParseError("argv", row.flag, f"{row.flag} followed by a value")
    text = tokens[i]
    if row.kind == "json":
        values.update(_JSON_READERS[row.flag](text))
    elif row.kind == "joined":
        values[row.attr] = text  # ServeConfig reads "demo" or the comma list back
    elif row.kind == "const":
        if text != row.const:
            raise CommandParseError(row.flag, text, f"'{row.const}' (gpt-oss's parser)")
        values[row.attr] = True
    else:
        values[row.attr] = _convert(row.flag, text, _CONVERTERS[row.kind])
    return i + 1


def _convert(flag: str, text: str, kind: type) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise CommandParseError(flag, text, f"a {kind.__name__}") from None


def _read_json(flag: str, text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandParseError(flag, text, f"a JSON object ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise CommandParseError(flag, text, "a JSON object")
    return data


def _read_compilation(text: str) -> dict[str, Any]:
    data = _read_json("--compilation-config", text)
    passes = data.pop("pass_config", {})
    known = {"fuse_allreduce_rms", "eliminate_noops"}
    if data or not isinstance(passes, dict) or set(passes) - known:
        raise CommandParseError(
            "--compilation-config", text, f"only pass_config keys {sorted(known)} are modelled"
        )
    return {name: passes.get(name) for name in known}


def _read_quantization(text: str) -> dict[str, Any]:
    data = _read_json("--quantization-config", text)
    mxfp8 = {"moe": {"activation": "mxfp8"}}
    if data != mxfp8:
        raise CommandParseError(
            "--quantization-config", text, f"{json.dumps(mxfp8)} (only mxfp8_moe is modelled)"
        )
    return {"mxfp8_moe": True}


def _read_speculative(text: str) -> dict[str, Any]:
    data = _read_json("--speculative-config", text)
    if set(data) != {"model", "num_speculative_tokens", "method"}:
        raise CommandParseError(
            "--speculative-config", text, "keys model, num_speculative_tokens and method"
        )
    if data["method"] != SPECULATIVE_METHOD:
        raise CommandParseError("--speculative-config", data["method"], f"{SPECULATIVE_METHOD!r}")
    return {
        "speculative": True,
        "speculative_model": data["model"],
        "num_speculative_tokens": data["num_speculative_tokens"],
    }


_JSON_READERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "--compilation-config": _read_compilation,
    "--speculative-config": _read_speculative,
    "--quantization-config": _read_quantization,
}


def _gpu_for(tp: int, mxfp8_moe: bool, gpu: str | None) -> str:
    if gpu is None:
        if mxfp8_moe:  # the kernel exists only on Blackwell
            return f"B200:{tp}"
        raise CommandParseError("gpu", None, "the GPU type: it is not on vLLM's command line")
    spec = GPUSpec.parse(gpu)
    if spec.count != tp:
        raise CommandParseError(
            "--tensor-parallel-size", tp, f"the GPU count of {spec} (one rank per GPU)"
        )
    return str(spec)
