"""The ``vllm serve`` argv and environment for a ServeConfig, and the way back.

Pure and deterministic: no shell strings, no I/O, no vLLM import. The flag order follows the
seed deployment so the default command can be compared with it token for token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from gptoss_modal._exceptions import CommandParseError, ConfigError
from gptoss_modal.serve.config import SPECULATIVE_METHOD, GPUSpec, ServeConfig
from gptoss_modal.serve.flags import OPTIONS
from gptoss_modal.serve.presets import BLACKWELL_ENV

__all__ = ["build_vllm_command", "parse_vllm_command", "vllm_env"]

TOOL_CALL_PARSER = "openai"  # vLLM's parser for gpt-oss's harmony tool calls


def build_vllm_command(config: ServeConfig) -> list[str]:
    """The exact ``vllm serve`` argv for ``config`` (resolved first)."""
    c = config.resolved()
    cmd = ["vllm", "serve", c.model]
    if c.revision is not None:
        cmd += ["--revision", c.revision]
    if c.served_model_names is not None:
        cmd += ["--served-model-name", *c.served_model_names]
    cmd += ["--host", c.host, "--port", str(c.port)]
    # Explicit both ways: the default flipped to on in vLLM 0.14.
    cmd += ["--async-scheduling" if c.async_scheduling else "--no-async-scheduling"]
    # Eager mode skips torch.compile and CUDA graph capture: boots in a fraction of the time.
    cmd += ["--enforce-eager" if c.fast_boot else "--no-enforce-eager"]
    cmd += ["--tensor-parallel-size", str(c.tensor_parallel_size)]
    compilation = _compilation_config(c)
    if compilation:
        cmd += ["--compilation-config", json.dumps(compilation)]
    if c.speculative:
        cmd += ["--speculative-config", json.dumps(_speculative_config(c))]
    cmd += _valued("--stream-interval", c.stream_interval)
    cmd += _valued("--kv-cache-dtype", c.kv_cache_dtype)
    cmd += _valued("--max-cudagraph-capture-size", c.max_cudagraph_capture_size)
    cmd += _valued("--max-num-batched-tokens", c.max_num_batched_tokens)
    cmd += _valued("--max-model-len", c.max_model_len)
    cmd += _valued("--max-num-seqs", c.max_num_seqs)
    cmd += _valued("--gpu-memory-utilization", c.gpu_memory_utilization)
    if c.tool_calling:
        cmd += ["--tool-call-parser", TOOL_CALL_PARSER, "--enable-auto-tool-choice"]
    cmd += list(c.extra_args)
    return cmd


def vllm_env(config: ServeConfig) -> dict[str, str]:
    """Environment variables vLLM needs for this config's GPU (only where they belong)."""
    if config.gpu_spec.preset.arch == "blackwell":
        return dict(BLACKWELL_ENV)
    return {}


def _valued(flag: str, value: int | float | str | None) -> list[str]:
    return [] if value is None else [flag, str(value)]


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
    return {
        "model": c.speculative_model,
        "num_speculative_tokens": c.num_speculative_tokens,
        "method": SPECULATIVE_METHOD,
    }


# ---- the way back -------------------------------------------------------------------------

_SWITCHES: dict[str, tuple[str, bool]] = {
    "--async-scheduling": ("async_scheduling", True),
    "--no-async-scheduling": ("async_scheduling", False),
    "--enforce-eager": ("fast_boot", True),
    "--no-enforce-eager": ("fast_boot", False),
}
_VALUED: dict[str, tuple[str, type]] = {
    "--revision": ("revision", str),
    "--host": ("host", str),
    "--port": ("port", int),
    "--stream-interval": ("stream_interval", int),
    "--kv-cache-dtype": ("kv_cache_dtype", str),
    "--max-cudagraph-capture-size": ("max_cudagraph_capture_size", int),
    "--max-num-batched-tokens": ("max_num_batched_tokens", int),
    "--max-model-len": ("max_model_len", int),
    "--max-num-seqs": ("max_num_seqs", int),
    "--gpu-memory-utilization": ("gpu_memory_utilization", float),
}


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
    tp = 1
    i = 3
    while i < len(tokens):
        flag = tokens[i]
        if flag not in _SWITCHES and flag not in _VALUED and flag not in _OTHER_KNOWN:
            values["extra_args"] = tuple(tokens[i:])
            break
        dest = OPTIONS[flag].dest
        if dest in seen:
            raise CommandParseError("argv", flag, "each option at most once")
        seen.add(dest)
        i += 1
        if flag in _SWITCHES:
            name, switch = _SWITCHES[flag]
            values[name] = switch
            continue
        if flag == "--enable-auto-tool-choice":
            values["tool_calling"] = True
            continue
        if flag == "--served-model-name":
            names = []
            while i < len(tokens) and not tokens[i].startswith("-"):
                names.append(tokens[i])
                i += 1
            values["served_model_names"] = tuple(names)
            continue
        if i >= len(tokens):
            raise CommandParseError("argv", flag, f"{flag} followed by a value")
        text = tokens[i]
        i += 1
        if flag in _VALUED:
            name, kind = _VALUED[flag]
            values[name] = _convert(flag, text, kind)
        elif flag == "--tensor-parallel-size":
            tp = _convert(flag, text, int)
        elif flag == "--compilation-config":
            values.update(_read_compilation(text))
        elif flag == "--speculative-config":
            values.update(_read_speculative(text))
        elif flag == "--tool-call-parser" and text != TOOL_CALL_PARSER:
            raise CommandParseError(flag, text, f"'{TOOL_CALL_PARSER}' (gpt-oss's parser)")
    if ("tool_call_parser" in seen) != ("enable_auto_tool_choice" in seen):
        raise CommandParseError(
            "argv", "tool calling", "--tool-call-parser openai with --enable-auto-tool-choice"
        )
    values["gpu"] = _gpu_for(tp, env, gpu)
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


_OTHER_KNOWN = frozenset(
    {
        "--served-model-name",
        "--tensor-parallel-size",
        "--compilation-config",
        "--speculative-config",
        "--tool-call-parser",
        "--enable-auto-tool-choice",
    }
)


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
