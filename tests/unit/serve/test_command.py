"""build_vllm_command, vllm_env and parse_vllm_command: the seed, round trips, invariants."""

from __future__ import annotations

import json

import pytest
from hypothesis import given

from gptoss_modal import (
    CommandParseError,
    ServeConfig,
    build_vllm_command,
    parse_vllm_command,
    vllm_env,
)
from gptoss_modal.serve.flags import OPTIONS
from gptoss_modal.serve.presets import BLACKWELL_ENV, GPUS
from tests.strategies import serve_configs

# The command the seed deployment (vLLM 0.13.0 on one B200) runs, as data.
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


def test_default_command_equals_the_seed_token_for_token() -> None:
    """The default config reproduces the seed's argv exactly, in the seed's order."""
    assert build_vllm_command(ServeConfig()) == SEED_ARGV


def test_default_command_equals_the_seed_flag_for_flag_with_json_as_json() -> None:
    """Every seed flag and value is present, JSON sub-configs equal as JSON, nothing extra."""
    assert _flag_values(build_vllm_command(ServeConfig())) == _flag_values(SEED_ARGV)


def test_default_env_is_the_seed_blackwell_kernel_switch() -> None:
    """On B200 the environment selects the MXFP8 MoE kernel, as the seed's image does."""
    assert vllm_env(ServeConfig()) == SEED_ENV


@pytest.mark.parametrize("gpu", [g for g in GPUS if g != "B200"])
def test_no_blackwell_env_off_blackwell(gpu: str) -> None:
    """The Blackwell-only kernel variable never reaches Hopper or Ampere GPUs."""
    assert vllm_env(ServeConfig(gpu=f"{gpu}:2")) == {}


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
def test_parse_of_build_is_the_resolved_config(config: ServeConfig) -> None:
    """parse(build(c)) == c.resolved(), given what argv cannot carry (GPU type, concurrency)."""
    resolved = config.resolved()
    parsed = parse_vllm_command(
        build_vllm_command(config),
        vllm_env(config),
        gpu=resolved.gpu,
        max_inputs=resolved.max_inputs,
    )
    assert parsed == resolved


@given(serve_configs())
def test_explicit_configs_round_trip_exactly(config: ServeConfig) -> None:
    """For an explicit config c, parse(build(c)) == c itself."""
    explicit = config.resolved()
    argv = build_vllm_command(explicit)
    assert (
        parse_vllm_command(
            argv, vllm_env(explicit), gpu=explicit.gpu, max_inputs=explicit.max_inputs
        )
        == explicit
    )


@given(serve_configs())
def test_each_option_at_most_once(config: ServeConfig) -> None:
    """No vLLM option (counting aliases such as --no-X) appears twice in a built command."""
    dests = [OPTIONS[t].dest for t in build_vllm_command(config) if t.startswith("-")]
    assert len(dests) == len(set(dests))


@given(serve_configs())
def test_every_flag_exists_and_every_choice_is_allowed(config: ServeConfig) -> None:
    """Each emitted flag is a vllm serve 0.13.0 option and each restricted value is a choice."""
    argv = build_vllm_command(config)
    for i, token in enumerate(argv[3:], start=3):
        if token.startswith("--"):
            option = OPTIONS[token]
            if option.choices is not None:
                assert argv[i + 1] in option.choices


@given(serve_configs())
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
        assert spec[0]["num_speculative_tokens"] >= 1  # type: ignore[index]


@given(serve_configs())
def test_env_only_on_blackwell(config: ServeConfig) -> None:
    """The Blackwell MoE variable is set exactly when the GPU is a Blackwell part."""
    assert (vllm_env(config) == BLACKWELL_ENV) == config.gpu.startswith("B200")
    assert vllm_env(config) in ({}, BLACKWELL_ENV)


@given(serve_configs())
def test_build_is_deterministic_and_shell_free(config: ServeConfig) -> None:
    """The same config always gives the same argv of plain strings; no token is a shell line."""
    first = build_vllm_command(config)
    assert first == build_vllm_command(ServeConfig.from_json(config.to_json()))
    assert all(isinstance(t, str) for t in first)
    assert first[:2] == ["vllm", "serve"]


@given(serve_configs())
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
        parse_vllm_command(argv, SEED_ENV)


def test_parse_needs_the_gpu_when_env_does_not_say() -> None:
    """Without a Blackwell environment or gpu=..., the GPU type is unknown."""
    with pytest.raises(CommandParseError) as err:
        parse_vllm_command(build_vllm_command(ServeConfig(gpu="H100:1")), {})
    assert err.value.field == "gpu"


def test_parse_rejects_tp_that_disagrees_with_the_gpu_count() -> None:
    """--tensor-parallel-size must equal the GPU count given."""
    with pytest.raises(CommandParseError, match="GPU count"):
        parse_vllm_command(SEED_ARGV, SEED_ENV, gpu="B200:2")


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
        parse_vllm_command(argv, SEED_ENV)
    argv = list(SEED_ARGV)
    argv[argv.index("--speculative-config") + 1] = '{"model": "a/b", "num_speculative_tokens": 3}'
    with pytest.raises(CommandParseError, match="method"):
        parse_vllm_command(argv, SEED_ENV)


def test_parse_rejects_invalid_values_through_the_config() -> None:
    """A value the config rejects (here a zero stream interval) fails parsing, naming its field."""
    argv = list(SEED_ARGV)
    argv[argv.index("--stream-interval") + 1] = "0"
    with pytest.raises(CommandParseError) as err:
        parse_vllm_command(argv, SEED_ENV)
    assert err.value.field == "stream_interval"


def test_seed_parses_back_to_the_default_config() -> None:
    """The seed's own argv reads back as the default config, resolved."""
    assert parse_vllm_command(SEED_ARGV, SEED_ENV) == ServeConfig().resolved()
