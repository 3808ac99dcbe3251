"""build_vllm_command, vllm_env and parse_vllm_command: the seed, round trips, invariants."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given

from gptoss_modal import (
    CommandParseError,
    ConfigError,
    ServeConfig,
    build_vllm_command,
    parse_vllm_command,
    vllm_env,
)
from gptoss_modal.serve.options import VLLM_VERSIONS, option_table
from gptoss_modal.serve.presets import GPUS
from gptoss_modal.serve.recipes import RECIPES
from tests.hypothesis_budget import examples
from tests.strategies import serve_configs

# Each drawn config builds and parses a whole command (~20 ms); 9 properties share the strategy.
SERVE_CONFIG_EXAMPLES = examples(30)

BLACKWELL_ENV = dict(RECIPES["0.13.0"].mxfp8_moe_env)  # the seed's MoE switch

# The command the seed deployment (vLLM 0.13.0 on one B200) runs, as data: the seed profile.
SEED_ARGV = [
    "vllm", "serve", "openai/gpt-oss-20b",
    "--revision", "d666cf3b67006cf8227666739edf25164aaffdeb",
    "--served-model-name", "openai/gpt-oss-20b", "llm",
    "--host", "0.0.0.0",
    "--port", "8000",
    "--async-scheduling",
    "--no-enforce-eager",
    "--tensor-parallel-size", "1",
    "--compilation-config",
    '{"pass_config": {"fuse_allreduce_rms": true, "eliminate_noops": true}}',
    "--speculative-config",
    '{"model": "RedHatAI/gpt-oss-20b-speculator.eagle3", '
    '"num_speculative_tokens": 7, "method": "eagle3"}',
    "--stream-interval", "20",
    "--kv-cache-dtype", "fp8",
    "--max-cudagraph-capture-size", "32",
    "--max-num-batched-tokens", "16384",
    "--max-model-len", "32768",
]  # fmt: skip
SEED_ENV = {"VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8": "1"}
# The default (vLLM 0.33.0's recipe on one B200): 3 drafts, MXFP8 MoE by flag, graphs in tokens.
DEFAULT_ARGV = [
    "vllm", "serve", "openai/gpt-oss-20b",
    "--revision", "d666cf3b67006cf8227666739edf25164aaffdeb",
    "--served-model-name", "openai/gpt-oss-20b", "llm",
    "--host", "0.0.0.0",
    "--port", "8000",
    "--async-scheduling",
    "--no-enforce-eager",
    "--tensor-parallel-size", "1",
    "--compilation-config",
    '{"pass_config": {"fuse_allreduce_rms": true, "eliminate_noops": true}}',
    "--speculative-config",
    '{"model": "RedHatAI/gpt-oss-20b-speculator.eagle3", '
    '"num_speculative_tokens": 3, "method": "eagle3"}',
    "--quantization-config", '{"moe": {"activation": "mxfp8"}}',
    "--stream-interval", "20",
    "--kv-cache-dtype", "fp8",
    "--max-cudagraph-capture-size", "128",
    "--max-num-batched-tokens", "16384",
    "--max-model-len", "32768",
]  # fmt: skip
JSON_FLAGS = ("--compilation-config", "--speculative-config")


def _flag_values(argv: list[str]) -> dict[str, list[str]]:
    """Group an argv into {flag: values}, JSON values decoded for comparison."""
    out: dict[str, list[str]] = {}
    flag = ""
    for token in argv[3:]:
        if token.startswith("--"):
            flag = token
            out[flag] = []
        else:
            out[flag].append(json.loads(token) if flag in JSON_FLAGS else token)
    return out


def test_seed_profile_command_equals_the_seed_token_for_token() -> None:
    """The seed profile reproduces the seed's argv exactly, in the seed's order."""
    assert build_vllm_command(ServeConfig(profile="seed")) == SEED_ARGV


def test_seed_profile_command_equals_the_seed_flag_for_flag_with_json_as_json() -> None:
    """Every seed flag and value is present, JSON sub-configs equal as JSON, nothing extra."""
    assert _flag_values(build_vllm_command(ServeConfig(profile="seed"))) == _flag_values(SEED_ARGV)


def test_seed_profile_env_is_the_seed_blackwell_kernel_switch() -> None:
    """On B200 the seed's environment selects the MXFP8 MoE kernel, as the seed's image does."""
    assert vllm_env(ServeConfig(profile="seed")) == SEED_ENV


def test_default_command_is_vllm_0_33_with_the_recipe_settings() -> None:
    """The default is vLLM 0.33.0's recipe on one B200: 3 drafts, MXFP8 MoE by flag, no env."""
    assert build_vllm_command(ServeConfig()) == DEFAULT_ARGV
    assert vllm_env(ServeConfig()) == {}


@pytest.mark.parametrize("version", VLLM_VERSIONS)
@pytest.mark.parametrize("gpu", [g for g in GPUS if g != "B200"])
def test_no_blackwell_env_off_blackwell(gpu: str, version: str) -> None:
    """The Blackwell-only kernel switch never reaches Hopper or Ampere GPUs, in any version."""
    config = ServeConfig(gpu=f"{gpu}:2", vllm_version=version)  # type: ignore[arg-type]
    assert vllm_env(config) == {}
    assert "--quantization-config" not in build_vllm_command(config)


def test_speculative_off_drops_the_speculative_config() -> None:
    """speculative=False means no --speculative-config at all."""
    assert "--speculative-config" not in build_vllm_command(ServeConfig(speculative=False))


def test_tool_calling_adds_the_gpt_oss_parser_pair() -> None:
    """Tool calling passes --tool-call-parser openai together with --enable-auto-tool-choice."""
    argv = build_vllm_command(ServeConfig(tool_calling=True))
    i = argv.index("--tool-call-parser")
    assert argv[i : i + 3] == ["--tool-call-parser", "openai", "--enable-auto-tool-choice"]


def test_fast_boot_switches_to_eager() -> None:
    """fast_boot replaces --no-enforce-eager with --enforce-eager."""
    argv = build_vllm_command(ServeConfig(fast_boot=True))
    assert "--enforce-eager" in argv
    assert "--no-enforce-eager" not in argv


def test_async_scheduling_off_is_explicit() -> None:
    """Turning async scheduling off passes --no-async-scheduling (vLLM >= 0.14 defaults it on)."""
    argv = build_vllm_command(ServeConfig(async_scheduling=False))
    assert "--no-async-scheduling" in argv
    assert "--async-scheduling" not in argv


def test_extra_args_come_last_in_order() -> None:
    """Validated extra arguments are appended unchanged after the modelled flags."""
    argv = build_vllm_command(ServeConfig(extra_args=("--seed", "1", "--enable-prefix-caching")))
    assert argv[-3:] == ["--seed", "1", "--enable-prefix-caching"]


def test_hopper_command_has_no_compilation_config_and_auto_kv() -> None:
    """On H100 the recipe drops the compilation passes and keeps the KV cache unquantised."""
    flags = _flag_values(build_vllm_command(ServeConfig(gpu="H100:1")))
    assert "--compilation-config" not in flags
    assert flags["--kv-cache-dtype"] == ["auto"]


@given(serve_configs())
@SERVE_CONFIG_EXAMPLES
def test_parse_of_build_is_the_resolved_config(config: ServeConfig) -> None:
    """parse(build(c)) == c.resolved(), given what argv cannot carry (GPU type, concurrency)."""
    resolved = config.resolved()
    parsed = parse_vllm_command(
        build_vllm_command(config),
        vllm_env(config),
        gpu=resolved.gpu,
        max_inputs=resolved.max_inputs,
        vllm_version=resolved.version,
    )
    assert parsed == resolved


@given(serve_configs())
@SERVE_CONFIG_EXAMPLES
def test_explicit_configs_round_trip_exactly(config: ServeConfig) -> None:
    """For an explicit config c, parse(build(c)) == c itself."""
    explicit = config.resolved()
    argv = build_vllm_command(explicit)
    assert (
        parse_vllm_command(
            argv,
            vllm_env(explicit),
            gpu=explicit.gpu,
            max_inputs=explicit.max_inputs,
            vllm_version=explicit.version,
        )
        == explicit
    )


@given(serve_configs())
@SERVE_CONFIG_EXAMPLES
def test_each_option_at_most_once(config: ServeConfig) -> None:
    """No vLLM option (counting aliases such as --no-X) appears twice in a built command."""
    options = option_table(config.version).options
    dests = [options[t].dest for t in build_vllm_command(config) if t.startswith("-")]
    assert len(dests) == len(set(dests))


@given(serve_configs())
@SERVE_CONFIG_EXAMPLES
def test_every_flag_exists_and_every_choice_is_allowed(config: ServeConfig) -> None:
    """Each emitted flag is an option of the config's vLLM and each restricted value a choice."""
    argv = build_vllm_command(config)
    options = option_table(config.version).options
    for i, token in enumerate(argv[3:], start=3):
        if token.startswith("--"):
            option = options[token]
            if option.choices is not None:
                assert argv[i + 1] in option.choices


@given(serve_configs())
@SERVE_CONFIG_EXAMPLES
def test_numbers_are_positive_and_memory_share_is_a_fraction(config: ServeConfig) -> None:
    """Values vLLM would reject at engine start (zero sizes, utilisation > 1) are never emitted."""
    flags = _flag_values(build_vllm_command(config))
    for flag in (
        "--max-num-seqs",
        "--max-model-len",
        "--max-num-batched-tokens",
        "--max-cudagraph-capture-size",
        "--stream-interval",
        "--tensor-parallel-size",
    ):
        for value in flags.get(flag, []):
            assert int(value) >= 1
    for value in flags.get("--gpu-memory-utilization", []):
        assert 0 < float(value) <= 1
    spec = flags.get("--speculative-config")
    if spec:
        drafted: Any = spec[0]
        assert drafted["num_speculative_tokens"] >= 1


@given(serve_configs())
@SERVE_CONFIG_EXAMPLES
def test_env_only_on_blackwell(config: ServeConfig) -> None:
    """The Blackwell MoE variable is set exactly on a Blackwell part under vLLM 0.13.0 (0.33.0
    spells it --quantization-config), and only when the config asks for the kernel."""
    on = config.resolved().mxfp8_moe and config.version == "0.13.0"
    env = vllm_env(config)
    # The response store is the one other variable the drawn configs set.
    assert env.pop("VLLM_ENABLE_RESPONSES_API_STORE", "1") == "1"
    assert (env == BLACKWELL_ENV) == bool(on)
    assert env in ({}, BLACKWELL_ENV)
    if on:
        assert config.gpu.startswith("B200")


@given(serve_configs())
@SERVE_CONFIG_EXAMPLES
def test_build_is_deterministic_and_shell_free(config: ServeConfig) -> None:
    """The same config always gives the same argv of plain strings; no token is a shell line."""
    first = build_vllm_command(config)
    assert first == build_vllm_command(ServeConfig.from_json(config.to_json()))
    assert all(isinstance(t, str) for t in first)
    assert first[:2] == ["vllm", "serve"]


@given(serve_configs())
@SERVE_CONFIG_EXAMPLES
def test_tensor_parallel_size_equals_gpu_count(config: ServeConfig) -> None:
    """--tensor-parallel-size is always the container's GPU count."""
    flags = _flag_values(build_vllm_command(config))
    assert flags["--tensor-parallel-size"] == [config.gpu.split(":")[1]]


def test_parse_rejects_a_foreign_prefix() -> None:
    """Only 'vllm serve MODEL ...' is read."""
    with pytest.raises(CommandParseError):
        parse_vllm_command(["python", "-m", "vllm"], gpu="B200:1")


def test_parse_rejects_a_repeated_option() -> None:
    """A flag given twice (also as its --no- twin) is an error, not last-wins."""
    argv = [*SEED_ARGV, "--no-async-scheduling"]
    with pytest.raises(CommandParseError, match="at most once"):
        parse_vllm_command(argv, SEED_ENV, vllm_version="0.13.0")


def test_parse_needs_the_gpu_when_env_does_not_say() -> None:
    """Without a Blackwell environment or gpu=..., the GPU type is unknown."""
    with pytest.raises(CommandParseError) as err:
        parse_vllm_command(build_vllm_command(ServeConfig(gpu="H100:1")), {})
    assert err.value.field == "gpu"


def test_parse_rejects_tp_that_disagrees_with_the_gpu_count() -> None:
    """--tensor-parallel-size must equal the GPU count given."""
    with pytest.raises(CommandParseError, match="GPU count"):
        parse_vllm_command(SEED_ARGV, SEED_ENV, gpu="B200:2", vllm_version="0.13.0")


def test_parse_rejects_env_for_another_gpu() -> None:
    """A Blackwell-only variable with a Hopper GPU is reported."""
    argv = build_vllm_command(ServeConfig(gpu="H100:1"))
    with pytest.raises(CommandParseError) as err:
        parse_vllm_command(argv, SEED_ENV, gpu="H100:1")
    assert err.value.field == "env"


def test_parse_rejects_unmodelled_json_keys() -> None:
    """A compilation or speculative key the config does not model is reported, not dropped."""
    argv = list(SEED_ARGV)
    argv[argv.index("--compilation-config") + 1] = '{"pass_config": {"fuse_norm_quant": true}}'
    with pytest.raises(CommandParseError, match="pass_config"):
        parse_vllm_command(argv, SEED_ENV, vllm_version="0.13.0")
    argv = list(SEED_ARGV)
    argv[argv.index("--speculative-config") + 1] = '{"model": "a/b", "num_speculative_tokens": 3}'
    with pytest.raises(CommandParseError, match="method"):
        parse_vllm_command(argv, SEED_ENV, vllm_version="0.13.0")


def test_parse_rejects_invalid_values_through_the_config() -> None:
    """A value the config rejects (here a zero stream interval) fails parsing, naming its field."""
    argv = list(SEED_ARGV)
    argv[argv.index("--stream-interval") + 1] = "0"
    with pytest.raises(CommandParseError) as err:
        parse_vllm_command(argv, SEED_ENV, vllm_version="0.13.0")
    assert err.value.field == "stream_interval"


def test_seed_parses_back_to_the_seed_profile() -> None:
    """The seed's own argv, read as vLLM 0.13.0's, is the seed profile, resolved."""
    assert parse_vllm_command(SEED_ARGV, SEED_ENV, vllm_version="0.13.0") == (
        ServeConfig(profile="seed").resolved()
    )


def test_default_parses_back_to_the_default_config() -> None:
    """The default argv reads back (as vLLM 0.33.0's, the default) as the default config; its
    concurrency is no longer the capture size, which now counts draft tokens too."""
    default = ServeConfig().resolved()
    assert parse_vllm_command(DEFAULT_ARGV, {}, gpu="B200:1", max_inputs=32) == default
    assert parse_vllm_command(DEFAULT_ARGV, {}, max_inputs=32) == default  # MXFP8 means B200


def test_seed_env_under_0_33_is_a_dead_variable() -> None:
    """0.13.0's MoE variable is not read by 0.33.0: parsing it there is an error naming env."""
    with pytest.raises(CommandParseError) as err:
        parse_vllm_command(DEFAULT_ARGV, SEED_ENV)
    assert err.value.field == "env"
    assert "0.33.0" in str(err.value)


@pytest.mark.parametrize(
    ("changes", "field", "flag"),
    [
        ({"per_request_metrics": True}, "per_request_metrics", "--enable-per-request-metrics"),
        ({"startup_plan": True}, "startup_plan", "VLLM_ENABLE_STARTUP_PLAN"),
        ({"system_start_date": "2025-08-05"}, "system_start_date", "VLLM_SYSTEM_START_DATE"),
        ({"extra_args": ("--moe-backend", "triton")}, "extra_args", "--moe-backend"),
    ],
)
def test_0_33_only_settings_are_refused_on_0_13(
    changes: dict[str, object], field: str, flag: str
) -> None:
    """A setting only vLLM 0.33.0 has fails on 0.13.0, naming the field, the flag and the fix."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(vllm_version="0.13.0", **changes)  # type: ignore[arg-type]
    assert err.value.field == field
    assert flag in str(err.value)
    assert "vllm_version='0.33.0'" in str(err.value)


def test_0_13_only_flags_are_refused_on_0_33() -> None:
    """A flag vLLM 0.33.0 removed (--swap-space) fails there, pointing to 0.13.0."""
    with pytest.raises(ConfigError, match=re.escape("vllm_version='0.13.0'")):
        ServeConfig(extra_args=("--swap-space", "4"))
    assert ServeConfig(vllm_version="0.13.0", extra_args=("--swap-space", "4"))


def test_0_33_options_land_in_flags_and_env() -> None:
    """Per-request metrics is a flag; the startup plan and the harmony date are variables."""
    config = ServeConfig(
        per_request_metrics=True, startup_plan=True, system_start_date="2025-08-05"
    )
    assert "--enable-per-request-metrics" in build_vllm_command(config)
    assert vllm_env(config) == {
        "VLLM_ENABLE_STARTUP_PLAN": "1",
        "VLLM_SYSTEM_START_DATE": "2025-08-05",
    }
    resolved = config.resolved()
    argv, env = build_vllm_command(config), vllm_env(config)
    assert parse_vllm_command(argv, env, max_inputs=resolved.max_inputs) == resolved


@given(serve_configs())
@SERVE_CONFIG_EXAMPLES
def test_every_env_var_exists_in_the_configs_vllm(config: ServeConfig) -> None:
    """No dead variable: each one the builder sets is read by the config's vLLM version."""
    assert set(vllm_env(config)) <= option_table(config.version).env_vars
