"""Every command we build parses with vLLM 0.13.0's own `vllm serve` parser, value for value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from gptoss_modal import ConfigError, ServeConfig, build_vllm_command
from gptoss_modal.serve.options.v0_13_0 import OPTION_GROUPS, VLLM_VERSION
from gptoss_modal.serve.presets import GPUS, KV_CACHE_DTYPES, PROFILES
from tests.contract._oracle import VllmOracle
from tests.strategies import serve_configs

pytestmark = pytest.mark.vllm

MATRIX: dict[str, ServeConfig] = {
    "default (the seed)": ServeConfig(),
    "120b on B200": ServeConfig(model="120b"),
    "120b on one H100": ServeConfig(model="120b", gpu="H100:1"),
    "120b on 8 H100": ServeConfig(model="120b", gpu="H100:8"),
    "120b on 2 A100-40GB": ServeConfig(model="120b", gpu="A100-40GB:2"),
    "tool calling, fast boot": ServeConfig(tool_calling=True, fast_boot=True),
    "no speculative, no async": ServeConfig(speculative=False, async_scheduling=False),
    "extra args": ServeConfig(extra_args=("--seed", "3", "--enable-prefix-caching")),
    **{f"gpu {gpu}": ServeConfig(gpu=f"{gpu}:2") for gpu in GPUS},
    **{f"profile {p}": ServeConfig(profile=p) for p in PROFILES},
}


def assert_vllm_accepts(vllm: VllmOracle, config: ServeConfig) -> dict[str, Any]:
    """vLLM parses the built argv, knows every speculative key, and reads our values back."""
    argv = build_vllm_command(config)
    verdict = vllm.parse_serve(argv)
    assert verdict["ok"], f"vLLM {vllm.version} rejected {argv}: {verdict['error']}"
    assert verdict["unknown_speculative_keys"] == [], verdict["unknown_speculative_keys"]
    args = verdict["args"]
    c = config.resolved()
    assert args["model"] == c.model
    assert args["revision"] == c.revision
    assert args["served_model_name"] == list(c.served_model_names or []) or (
        c.served_model_names is None and args["served_model_name"] is None
    )
    assert (args["host"], args["port"]) == (c.host, c.port)
    assert args["tensor_parallel_size"] == c.tensor_parallel_size
    assert args["async_scheduling"] is c.async_scheduling
    assert args["enforce_eager"] is c.fast_boot
    # None means "vLLM's default": the flag is not passed, so only set values are compared.
    for dest in (
        "stream_interval",
        "kv_cache_dtype",
        "max_cudagraph_capture_size",
        "max_num_batched_tokens",
        "max_model_len",
        "max_num_seqs",
        "gpu_memory_utilization",
    ):
        if getattr(c, dest) is not None:
            assert args[dest] == getattr(c, dest), dest
    passes = args["compilation_config"]["pass_config"]
    for name in ("fuse_allreduce_rms", "eliminate_noops"):
        if getattr(c, name) is not None:
            assert passes[name] is getattr(c, name)
    if c.speculative:
        spec = args["speculative_config"]
        assert spec == {
            "model": c.speculative_model,
            "num_speculative_tokens": c.num_speculative_tokens,
            "method": "eagle3",
        }
        assert "eagle3" in verdict["speculative_methods"]
    else:
        assert args["speculative_config"] is None
    assert bool(args["enable_auto_tool_choice"]) is c.tool_calling
    assert args["tool_call_parser"] == ("openai" if c.tool_calling else None)
    return verdict


def test_oracle_runs_the_pinned_vllm(vllm: VllmOracle) -> None:
    """The contract is checked against the vLLM version the option table was taken from."""
    assert vllm.version == VLLM_VERSION


@pytest.mark.parametrize("name", list(MATRIX))
def test_matrix_commands_parse_with_vllm(vllm: VllmOracle, name: str) -> None:
    """Default, 120b, every GPU type and profile: vLLM parses the argv and reads our values."""
    assert_vllm_accepts(vllm, MATRIX[name])


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=serve_configs())
def test_drawn_configs_parse_with_vllm(vllm: VllmOracle, config: ServeConfig) -> None:
    """Hypothesis-drawn configs across the whole space all parse with vLLM's parser."""
    assert_vllm_accepts(vllm, config)


def _mutate(argv: list[str], flag: str, change: Any) -> list[str]:
    out = list(argv)
    i = out.index(flag)
    out[i + 1] = change(out[i + 1])
    return out


def test_a_renamed_flag_fails_the_contract(vllm: VllmOracle) -> None:
    """A flag vLLM does not know (here a renamed one) is rejected by vLLM's parser."""
    argv = [
        "--max-batched-tokens" if t == "--max-num-batched-tokens" else t
        for t in build_vllm_command(ServeConfig())
    ]
    verdict = vllm.parse_serve(argv)
    assert not verdict["ok"]
    assert "--max-batched-tokens" in verdict["error"]


def test_vllm_accepts_abbreviations_so_extra_args_must_not(vllm: VllmOracle) -> None:
    """argparse takes unambiguous prefixes (--max-num-seq), so our own check demands full names."""
    argv = [*build_vllm_command(ServeConfig()), "--max-num-seq", "8"]
    assert vllm.parse_serve(argv)["ok"]
    with pytest.raises(ConfigError, match="did you mean --max-num-seqs"):
        ServeConfig(extra_args=("--max-num-seq", "8"))


def test_a_renamed_compilation_key_fails_the_contract(vllm: VllmOracle) -> None:
    """A pass_config key vLLM does not know is a parse error (pydantic forbids extras)."""
    argv = _mutate(
        build_vllm_command(ServeConfig()),
        "--compilation-config",
        lambda text: text.replace("fuse_allreduce_rms", "fuse_allreduce_rmsnorm"),
    )
    verdict = vllm.parse_serve(argv)
    assert not verdict["ok"]
    assert "fuse_allreduce_rmsnorm" in verdict["error"]


def test_a_renamed_speculative_key_fails_the_contract(vllm: VllmOracle) -> None:
    """0.13.0 ignores unknown speculative keys, so the contract checks them against the class."""
    argv = _mutate(
        build_vllm_command(ServeConfig()),
        "--speculative-config",
        lambda text: text.replace("num_speculative_tokens", "num_speculative_token"),
    )
    verdict = vllm.parse_serve(argv)
    assert verdict["unknown_speculative_keys"] == ["num_speculative_token"]
    with pytest.raises(AssertionError):
        assert verdict["unknown_speculative_keys"] == []


def test_a_bad_choice_fails_the_contract(vllm: VllmOracle) -> None:
    """A --kv-cache-dtype outside vLLM's choices is rejected."""
    argv = _mutate(build_vllm_command(ServeConfig()), "--kv-cache-dtype", lambda _: "fp4")
    assert not vllm.parse_serve(argv)["ok"]


def test_option_snapshot_matches_vllm(vllm: VllmOracle) -> None:
    """The bundled option table (used to validate extra_args) equals vLLM's parser."""
    groups = vllm.call("serve_option_groups")["groups"]
    live = sorted(
        (g["dest"], tuple(g["options"]), g["arity"], tuple(g["choices"]) if g["choices"] else None)
        for g in groups
    )
    assert live == sorted(OPTION_GROUPS)


def test_kv_cache_choices_match_vllm(vllm: VllmOracle) -> None:
    """Our allowed KV cache dtypes are exactly vLLM's choices."""
    groups = vllm.call("serve_option_groups")["groups"]
    choices = next(g["choices"] for g in groups if g["dest"] == "kv_cache_dtype")
    assert tuple(choices) == KV_CACHE_DTYPES


def test_json_sub_configs_are_valid_json(vllm: VllmOracle) -> None:
    """The compilation config vLLM built from our JSON carries both fused passes."""
    verdict = assert_vllm_accepts(vllm, ServeConfig())
    passes = verdict["args"]["compilation_config"]["pass_config"]
    assert json.dumps(passes, sort_keys=True) == json.dumps(
        {"eliminate_noops": True, "fuse_allreduce_rms": True}, sort_keys=True
    ) or (passes["eliminate_noops"] and passes["fuse_allreduce_rms"])
