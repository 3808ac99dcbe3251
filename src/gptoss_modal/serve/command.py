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
from gptoss_modal.serve.config import SPECULATIVE_METHOD, GPUSpec, ServeConfig
from gptoss_modal.serve.flags import BY_SPELLING, FLAGS, OPTIONS, Flag
from gptoss_modal.serve.presets import BLACKWELL_ENV

__all__ = ["build_vllm_command", "parse_vllm_command", "vllm_env"]


def build_vllm_command(config: ServeConfig) -> list[str]:
    """The exact ``vllm serve`` argv for ``config`` (resolved first)."""
    c = config.resolved()
    cmd = ["vllm", "serve", c.model]
    for row in FLAGS:
        cmd += _write(row, c)
    cmd += list(c.extra_args)
    return cmd


def vllm_env(config: ServeConfig) -> dict[str, str]:
    """Environment variables vLLM needs for this config's GPU (only where they belong)."""
    if config.gpu_spec.preset.arch == "blackwell":
        return dict(BLACKWELL_ENV)
    return {}


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


_JSON_WRITERS: dict[str, Callable[[ServeConfig], dict[str, Any]]] = {
    "--compilation-config": _compilation_config,
    "--speculative-config": _speculative_config,
}


# ---- the way back -------------------------------------------------------------------------


def parse_vllm_command(
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    *,
    gpu: str | None = None,
    max_inputs: int | Literal["tied"] | None = "tied",
) -> ServeConfig:
    """Read an argv made by :func:`build_vllm_command` back into an explicit ServeConfig.

    The GPU type is not on vLLM's command line (vLLM reads it off the hardware), so pass
    ``gpu``; without it a Blackwell environment means B200. Its count must equal the tensor
    parallel size. ``max_inputs`` (Modal's concurrency, not a vLLM flag) is by default
    ``"tied"`` to the CUDA graph capture size, as resolution ties them. Flags after the first
    one the config does not model are kept, in order, as ``extra_args``.
    """
    tokens = list(argv)
    if tokens[:2] != ["vllm", "serve"] or len(tokens) < 3 or tokens[2].startswith("-"):
        raise CommandParseError("argv", tokens[:3], "'vllm serve MODEL ...'")
    values: dict[str, Any] = {"model": tokens[2], "profile": None, "speculative": False}
    seen: set[str] = set()
    i = 3
    while i < len(tokens):
        found = BY_SPELLING.get(tokens[i])
        if found is None:
            values["extra_args"] = tuple(tokens[i:])
            break
        dest = OPTIONS[tokens[i]].dest
        if dest in seen:
            raise CommandParseError("argv", tokens[i], "each option at most once")
        seen.add(dest)
        i = _read(*found, tokens, i + 1, values)
    if ("tool_call_parser" in seen) != ("enable_auto_tool_choice" in seen):
        raise CommandParseError(
            "argv", "tool calling", "--tool-call-parser openai with --enable-auto-tool-choice"
        )
    values["gpu"] = _gpu_for(values.pop("tensor_parallel_size", 1), env, gpu)
    if max_inputs != "tied":
        values["max_inputs"] = max_inputs
    else:
        values["max_inputs"] = values.get("max_cudagraph_capture_size")
    try:
        config = ServeConfig(**values)
    except ConfigError as exc:
        raise CommandParseError(exc.field, exc.value, exc.allowed, source="argv") from exc
    if env is not None and dict(env) != vllm_env(config):
        raise CommandParseError(
            "env", dict(env), f"the environment for {config.gpu}: {vllm_env(config)}"
        )
    return config


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
}


def _gpu_for(tp: int, env: Mapping[str, str] | None, gpu: str | None) -> str:
    if gpu is None:
        if env is not None and all(env.get(k) == v for k, v in BLACKWELL_ENV.items()):
            return f"B200:{tp}"
        raise CommandParseError("gpu", None, "the GPU type: it is not on vLLM's command line")
    spec = GPUSpec.parse(gpu)
    if spec.count != tp:
        raise CommandParseError(
            "--tensor-parallel-size", tp, f"the GPU count of {spec} (one rank per GPU)"
        )
    return str(spec)
