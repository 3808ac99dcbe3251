"""Every command we build parses with its own vLLM's `vllm serve` parser, value for value, and
each generated option table equals its version's parser (both 0.13.0 and 0.33.0)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, reject, settings

from gptoss_modal import ConfigError, ServeConfig, build_vllm_command, vllm_env
from gptoss_modal.serve.options import VLLM_VERSIONS, VllmVersion, option_table
from gptoss_modal.serve.presets import GPUS, KV_CACHE_DTYPES, PROFILES
from tests.contract._oracle import VllmOracle
from tests.strategies import serve_configs

pytestmark = pytest.mark.vllm

# Model x GPU x profile, built for each version (the seed profile only for 0.13.0, its own).
RECIPE_GPUS = ("B200:1", "H200:1", "H100:1", "H100:8")
MATRIX: dict[str, dict[str, Any]] = {
    **{
        f"{model} on {gpu}, {profile}": {"model": model, "gpu": gpu, "profile": profile}
        for model in ("20b", "120b")
        for gpu in RECIPE_GPUS
        for profile in PROFILES
        if profile != "seed"
    },
    "120b on 2 A100-40GB": {"model": "120b", "gpu": "A100-40GB:2"},
    "tool calling, fast boot": {"tool_calling": True, "fast_boot": True},
    "no speculative, no async": {"speculative": False, "async_scheduling": False},
    "extra args": {"extra_args": ("--seed", "3", "--enable-prefix-caching")},
    "demo tool server, response store": {"tool_server": "demo", "response_store": True},
    "MCP tool servers": {"tool_server": ("localhost:8001", "10.0.0.7:9000")},
    **{f"gpu {gpu}": {"gpu": f"{gpu}:2"} for gpu in GPUS},
}
SEED_MATRIX: dict[str, dict[str, Any]] = {
    f"seed, {model} on {gpu}": {"model": model, "gpu": gpu, "profile": "seed"}
    for model in ("20b", "120b")
    for gpu in RECIPE_GPUS
}
# What only vLLM 0.33.0 can express, each checked by its parser.
V0_33_ONLY: dict[str, dict[str, Any]] = {
    "per-request metrics": {"per_request_metrics": True},
    "startup plan and date": {"startup_plan": True, "system_start_date": "2025-08-05"},
    "moe backend by extra args": {"extra_args": ("--moe-backend", "flashinfer_trtllm")},
}


def _version(oracle: VllmOracle) -> VllmVersion:
    """The oracle's vLLM version, as one of ours (the oracle only runs supported versions)."""
    return next(v for v in VLLM_VERSIONS if v == oracle.version)


def assert_vllm_accepts(vllm: VllmOracle, config: ServeConfig) -> dict[str, Any]:
    """vLLM parses the built argv, knows every sub-config key, and reads our values back."""
    argv = build_vllm_command(config)
    verdict = vllm.parse_serve(argv)
    assert verdict["ok"], f"vLLM {vllm.version} rejected {argv}: {verdict['error']}"
    assert verdict["unknown_speculative_keys"] == [], verdict["unknown_speculative_keys"]
    assert verdict["sub_config_errors"] == [], verdict["sub_config_errors"]
    args = verdict["args"]
    c = config.resolved()
    assert c.vllm_version == vllm.version
    assert set(vllm_env(config)) <= set(vllm.call("env_vars")["names"])
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
    # vLLM reads "demo" or splits the value on commas into MCP servers (init_tool_server).
    expected_tools = c.tool_server if isinstance(c.tool_server, str) else None
    if isinstance(c.tool_server, tuple):
        expected_tools = ",".join(c.tool_server)
    assert args["tool_server"] == expected_tools
    if c.vllm_version == "0.33.0":
        # The parser builds QuantizationConfigArgs: mxfp8 is fp8 e4m3 in groups of 32.
        quantization = args["quantization_config"]
        if c.mxfp8_moe:
            activation = quantization["moe"]["activation"]
            assert (activation["dtype"], activation["scale"]["group_shape"]) == (
                "torch.float8_e4m3fn",
                [1, 32],
            )
        else:
            assert quantization is None
        assert args["enable_per_request_metrics"] is c.per_request_metrics
    return verdict


def test_each_oracle_runs_its_version(vllm_each: VllmOracle) -> None:
    """Each contract run is checked against a version that has a generated option table."""
    assert vllm_each.version in VLLM_VERSIONS
    assert option_table(_version(vllm_each)).version == vllm_each.version


@pytest.mark.parametrize("name", list(MATRIX))
def test_matrix_commands_parse_with_their_vllm(vllm_each: VllmOracle, name: str) -> None:
    """Model x GPU x profile, and the edge cases: each version's parser reads our values."""
    assert_vllm_accepts(vllm_each, ServeConfig(**MATRIX[name], vllm_version=_version(vllm_each)))


@pytest.mark.parametrize("name", list(SEED_MATRIX))
def test_seed_profile_parses_with_vllm_0_13(vllm: VllmOracle, name: str) -> None:
    """The seed profile (vLLM 0.13.0) on every recipe GPU parses with vLLM 0.13.0."""
    assert_vllm_accepts(vllm, ServeConfig(**SEED_MATRIX[name]))


@pytest.mark.parametrize("name", list(V0_33_ONLY))
def test_0_33_only_settings_parse_with_0_33_and_are_refused_on_0_13(
    vllm_oracle_for: Any, name: str
) -> None:
    """What only 0.33.0 has parses there, and the builder refuses it for 0.13.0."""
    assert_vllm_accepts(vllm_oracle_for("0.33.0"), ServeConfig(**V0_33_ONLY[name]))
    with pytest.raises(ConfigError, match=r"0\.33\.0"):
        ServeConfig(**V0_33_ONLY[name], vllm_version="0.13.0")


def test_default_is_0_33_and_parses_there(vllm_oracle_for: Any) -> None:
    """The default config is a vLLM 0.33.0 command, accepted by 0.33.0's parser."""
    assert ServeConfig().resolved().vllm_version == "0.33.0"
    assert_vllm_accepts(vllm_oracle_for("0.33.0"), ServeConfig())


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=serve_configs())
def test_drawn_configs_parse_with_their_vllm(vllm_each: VllmOracle, config: ServeConfig) -> None:
    """Hypothesis-drawn configs across the whole space parse with each version's parser."""
    try:
        config = config.replace(vllm_version=_version(vllm_each))
    except ConfigError:
        reject()  # e.g. an extra argument the other version lacks
    assert_vllm_accepts(vllm_each, config)


def test_a_flag_only_in_the_other_version_is_refused_by_both(vllm_each: VllmOracle) -> None:
    """Each switch that only the other version has is refused by our builder and by this
    version's own parser, so the builder never lets a foreign flag through."""
    here = option_table(_version(vllm_each)).options
    foreign = sorted(
        spelling
        for version in VLLM_VERSIONS
        for spelling, option in option_table(version).options.items()
        if spelling not in here and option.arity == "0" and spelling.startswith("--")
    )
    assert foreign
    base = build_vllm_command(ServeConfig(vllm_version=_version(vllm_each)))
    accepted: list[str] = []
    for spelling in foreign:
        with pytest.raises(ConfigError, match="exists in vLLM"):
            ServeConfig(vllm_version=_version(vllm_each), extra_args=(spelling,))
        # argparse would take it as an abbreviation of a longer option: only ours refuses it.
        abbreviation = any(other.startswith(spelling) for other in here)
        if not abbreviation and vllm_each.parse_serve([*base, spelling])["ok"]:
            accepted.append(spelling)
    # 0.33.0's parser still takes the old "--no-X" form of its "--X" switches without listing
    # it; the builder refuses it anyway (it takes the spellings of the version's own table).
    assert all(s.startswith("--no-") and "--" + s.removeprefix("--no-") in here for s in accepted)


def _mutate(argv: list[str], flag: str, change: Any) -> list[str]:
    out = list(argv)
    i = out.index(flag)
    out[i + 1] = change(out[i + 1])
    return out


def test_a_renamed_flag_fails_the_contract(vllm_each: VllmOracle) -> None:
    """A flag vLLM does not know (here a renamed one) is rejected by vLLM's parser."""
    config = ServeConfig(vllm_version=_version(vllm_each))
    argv = [
        "--max-batched-tokens" if t == "--max-num-batched-tokens" else t
        for t in build_vllm_command(config)
    ]
    verdict = vllm_each.parse_serve(argv)
    assert not verdict["ok"]
    assert "--max-batched-tokens" in verdict["error"]


def test_vllm_accepts_abbreviations_so_extra_args_must_not(vllm_each: VllmOracle) -> None:
    """argparse takes unambiguous prefixes (--max-num-seq), so our own check demands full names."""
    config = ServeConfig(vllm_version=_version(vllm_each))
    argv = [*build_vllm_command(config), "--max-num-seq", "8"]
    assert vllm_each.parse_serve(argv)["ok"]
    with pytest.raises(ConfigError, match="did you mean --max-num-seqs"):
        config.replace(extra_args=("--max-num-seq", "8"))


def test_a_renamed_compilation_key_fails_the_contract(vllm_each: VllmOracle) -> None:
    """A pass_config key vLLM does not know is a parse error (pydantic forbids extras)."""
    argv = _mutate(
        build_vllm_command(ServeConfig(vllm_version=_version(vllm_each))),
        "--compilation-config",
        lambda text: text.replace("fuse_allreduce_rms", "fuse_allreduce_rmsnorm"),
    )
    verdict = vllm_each.parse_serve(argv)
    assert not verdict["ok"]
    assert "fuse_allreduce_rmsnorm" in verdict["error"]


def test_a_renamed_speculative_key_fails_the_contract(vllm_each: VllmOracle) -> None:
    """Unknown speculative keys are checked against the class (0.13.0 ignores them)."""
    argv = _mutate(
        build_vllm_command(ServeConfig(vllm_version=_version(vllm_each))),
        "--speculative-config",
        lambda text: text.replace("num_speculative_tokens", "num_speculative_token"),
    )
    verdict = vllm_each.parse_serve(argv)
    assert verdict["unknown_speculative_keys"] == ["num_speculative_token"]


def test_a_bad_speculative_value_fails_the_contract(vllm_each: VllmOracle) -> None:
    """A speculative value of the wrong type fails that version's SpeculativeConfig field."""
    argv = _mutate(
        build_vllm_command(ServeConfig(vllm_version=_version(vllm_each))),
        "--speculative-config",
        lambda text: text.replace(
            '"num_speculative_tokens": 3', '"num_speculative_tokens": "x"'
        ).replace('"num_speculative_tokens": 7', '"num_speculative_tokens": "x"'),
    )
    verdict = vllm_each.parse_serve(argv)
    assert verdict["ok"]
    assert any("num_speculative_tokens" in e for e in verdict["sub_config_errors"])


def test_a_bad_quantization_config_fails_the_contract(vllm_oracle_for: Any) -> None:
    """An activation name vLLM 0.33.0 does not know fails its QuantizationConfigArgs."""
    oracle = vllm_oracle_for("0.33.0")
    argv = _mutate(
        build_vllm_command(ServeConfig()),
        "--quantization-config",
        lambda t: t.replace("mxfp8", "mxfp9"),
    )
    verdict = oracle.parse_serve(argv)
    assert not verdict["ok"]
    assert "mxfp9" in verdict["error"]


def test_a_bad_choice_fails_the_contract(vllm: VllmOracle) -> None:
    """A --kv-cache-dtype outside vLLM 0.13.0's parser choices is rejected."""
    config = ServeConfig(profile="seed")
    argv = _mutate(build_vllm_command(config), "--kv-cache-dtype", lambda _: "fp4")
    assert not vllm.parse_serve(argv)["ok"]


def test_option_table_matches_vllm(vllm_each: VllmOracle) -> None:
    """Each generated table (options, VLLM_* variables, KV dtypes) equals its vLLM's own."""
    table = option_table(_version(vllm_each))
    groups = vllm_each.call("serve_option_groups")["groups"]
    live = sorted(
        (g["dest"], tuple(g["options"]), g["arity"], tuple(g["choices"]) if g["choices"] else None)
        for g in groups
    )
    generated = sorted({(o.dest, o.spellings, o.arity, o.choices) for o in table.options.values()})
    assert live == generated
    assert set(vllm_each.call("env_vars")["names"]) == table.env_vars
    assert tuple(vllm_each.call("kv_cache_dtypes")["dtypes"]) == table.kv_cache_dtypes


def test_kv_cache_choices_match_vllm(vllm: VllmOracle) -> None:
    """Our allowed KV cache dtypes (those every version takes) are exactly 0.13.0's choices."""
    groups = vllm.call("serve_option_groups")["groups"]
    choices = next(g["choices"] for g in groups if g["dest"] == "kv_cache_dtype")
    assert tuple(choices) == KV_CACHE_DTYPES


def test_json_sub_configs_are_valid_json(vllm_each: VllmOracle) -> None:
    """The compilation config vLLM built from our JSON carries both fused passes."""
    config = ServeConfig(vllm_version=_version(vllm_each))
    verdict = assert_vllm_accepts(vllm_each, config)
    passes = verdict["args"]["compilation_config"]["pass_config"]
    assert (passes["eliminate_noops"], passes["fuse_allreduce_rms"]) == (True, True)
    assert json.loads(json.dumps(passes)) == passes


def test_response_store_variable_is_read_by_each_vllm(vllm_each: VllmOracle) -> None:
    """VLLM_ENABLE_RESPONSES_API_STORE is one of each version's own envs.py variables, so the
    response_store switch is never a dead variable."""
    names = set(vllm_each.call("env_vars")["names"])
    config = ServeConfig(response_store=True, vllm_version=_version(vllm_each))
    assert vllm_env(config)["VLLM_ENABLE_RESPONSES_API_STORE"] == "1"
    assert set(vllm_env(config)) <= names
