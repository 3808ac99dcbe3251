"""ServeConfig: presets, GPU rules, profiles, validation errors and loading."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from gptoss_modal import ConfigError, ServeConfig, load_config
from gptoss_modal.serve.config import parse_overrides
from gptoss_modal.serve.presets import MODELS, PROFILE_DEFAULTS
from tests.strategies import serve_configs

SEED_REVISION_20B = "d666cf3b67006cf8227666739edf25164aaffdeb"


def test_seed_profile_resolves_to_the_seed_values() -> None:
    """The seed profile is the seed deployment: 20b on one B200 with EAGLE3 and fp8 KV."""
    c = ServeConfig(profile="seed").resolved()
    assert c.model == "openai/gpt-oss-20b"
    assert c.revision == SEED_REVISION_20B
    assert c.gpu == "B200:1"
    assert (c.speculative_model, c.num_speculative_tokens) == (
        "RedHatAI/gpt-oss-20b-speculator.eagle3",
        7,
    )
    assert c.kv_cache_dtype == "fp8"
    assert (c.fuse_allreduce_rms, c.eliminate_noops) == (True, True)
    assert (c.max_inputs, c.max_cudagraph_capture_size) == (32, 32)
    assert (c.max_num_batched_tokens, c.max_model_len, c.stream_interval) == (16384, 32768, 20)
    assert c.async_scheduling
    assert not c.fast_boot
    assert c.served_model_names == ("openai/gpt-oss-20b", "llm")
    assert (c.host, c.port) == ("0.0.0.0", 8000)
    assert (c.vllm_version, c.mxfp8_moe) == ("0.13.0", True)


def test_default_is_vllm_0_33_with_its_recipe() -> None:
    """The default runs vLLM 0.33.0: its recipe's 3 drafts, MXFP8 MoE, graphs sized in tokens."""
    c = ServeConfig().resolved()
    assert c.vllm_version == "0.33.0"
    assert (c.speculative_model, c.num_speculative_tokens) == (
        "RedHatAI/gpt-oss-20b-speculator.eagle3",
        3,
    )
    assert (c.kv_cache_dtype, c.mxfp8_moe) == ("fp8", True)
    assert (c.max_inputs, c.max_cudagraph_capture_size) == (32, 32 * (1 + 3))
    assert (c.max_num_batched_tokens, c.max_model_len, c.stream_interval) == (16384, 32768, 20)


def test_default_has_no_advisory_about_itself() -> None:
    """Nothing the default does is a known problem: no note fires."""
    assert ServeConfig().advisories() == ()


@pytest.mark.parametrize("gpu", ["B200:1", "H200:1", "H100:1", "H100:2"])
@pytest.mark.parametrize("model", ["20b", "120b"])
def test_balanced_on_every_recipe_gpu_has_no_advisory(model: str, gpu: str) -> None:
    """The default profile on the recipe's GPUs sizes CUDA graphs in tokens: no notes."""
    assert ServeConfig(model=model, gpu=gpu).advisories() == ()


def test_120b_on_0_33_uses_the_v3_draft_with_7_tokens() -> None:
    """vLLM 0.33.0's recipe drafts 120b with nvidia's EAGLE3 v3 and 7 tokens."""
    c = ServeConfig(model="120b").resolved()
    assert (c.speculative_model, c.num_speculative_tokens) == ("nvidia/gpt-oss-120b-Eagle3-v3", 7)
    assert c.max_cudagraph_capture_size == 32 * 8


@pytest.mark.parametrize("value", ["0.2", "0.13", "latest", "0.33.1"])
def test_unknown_vllm_version_names_both(value: str) -> None:
    """Anything but the two supported versions is an error naming both."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(vllm_version=value)  # type: ignore[arg-type]
    assert err.value.field == "vllm_version"
    assert "0.13.0" in err.value.allowed
    assert "0.33.0" in err.value.allowed


def test_seed_profile_pins_vllm_0_13() -> None:
    """The seed profile is a vLLM 0.13.0 deployment: asking it for 0.33.0 is an error."""
    assert ServeConfig(profile="seed", vllm_version="0.13.0").resolved().vllm_version == "0.13.0"
    with pytest.raises(ConfigError, match="seed"):
        ServeConfig(profile="seed", vllm_version="0.33.0")


def test_vllm_version_comes_from_every_source(tmp_path: Path) -> None:
    """GPTOSS_VLLM_VERSION, [serve] vllm_version and overrides set it, with one precedence."""
    path = tmp_path / "c.toml"
    path.write_text('[serve]\nvllm_version = "0.13.0"\n')
    assert load_config(path, env={}).vllm_version == "0.13.0"
    assert load_config(env={"GPTOSS_VLLM_VERSION": "0.13.0"}).vllm_version == "0.13.0"
    env = {"GPTOSS_VLLM_VERSION": "0.13.0"}
    assert load_config(path, env=env, overrides={"vllm_version": "0.33.0"}).version == "0.33.0"
    assert load_config(env={"GPTOSS_VLLM_VERSION": "default"}).version == "0.33.0"
    with pytest.raises(ConfigError) as err:
        load_config(env={"GPTOSS_VLLM_VERSION": "0.2"})
    assert err.value.source == "environment GPTOSS_VLLM_VERSION"


def test_vllm_version_survives_the_json_round_trip() -> None:
    """to_json carries the version, and from_json reads it back to an equal config."""
    for config in (ServeConfig(vllm_version="0.13.0"), ServeConfig(profile="seed").resolved()):
        assert ServeConfig.from_json(config.to_json()) == config
        assert '"vllm_version": "0.13.0"' in config.to_json()


@pytest.mark.parametrize("date", ["2025-8-5", "05/08/2025", "2025-02-30", "today"])
def test_system_start_date_must_be_an_iso_date(date: str) -> None:
    """VLLM_SYSTEM_START_DATE takes YYYY-MM-DD; anything else names the field."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(system_start_date=date)
    assert err.value.field == "system_start_date"


def test_mxfp8_moe_only_on_blackwell() -> None:
    """The MXFP8 MoE kernel is Blackwell's; asking for it on Hopper is an error, off is fine."""
    with pytest.raises(ConfigError, match="Blackwell"):
        ServeConfig(gpu="H100:1", mxfp8_moe=True)
    assert ServeConfig(gpu="H100:1").resolved().mxfp8_moe is False
    assert ServeConfig(mxfp8_moe=False).resolved().mxfp8_moe is False


def test_model_aliases_normalise_to_the_hub_id() -> None:
    """Short names such as '120b' and 'gpt-oss-120b' mean the Hub id openai/gpt-oss-120b."""
    for alias in ("120b", "gpt-oss-120b", "OpenAI/gpt-oss-120b"):
        assert ServeConfig(model=alias, gpu="H200").model == "openai/gpt-oss-120b"


def test_120b_uses_the_recipe_draft_and_pinned_revision() -> None:
    """120b on vLLM 0.13.0 drafts with nvidia's EAGLE3 v2 (3 tokens) and pins its own revision."""
    c = ServeConfig(model="120b", vllm_version="0.13.0").resolved()
    assert (c.speculative_model, c.num_speculative_tokens) == ("nvidia/gpt-oss-120b-Eagle3-v2", 3)
    assert c.revision == MODELS["openai/gpt-oss-120b"].revision


def test_unknown_model_is_rejected_with_the_allowed_names() -> None:
    """An unknown model names the field, the value and the presets."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(model="meta/llama")
    assert err.value.field == "model"
    assert err.value.value == "meta/llama"
    assert "openai/gpt-oss-20b" in err.value.allowed


def test_gpu_is_case_insensitive_and_defaults_to_one() -> None:
    """'h100' means one H100; the count after ':' is kept."""
    assert ServeConfig(gpu="h100").gpu == "H100:1"
    assert ServeConfig(gpu="b200:2").gpu == "B200:2"


@pytest.mark.parametrize("gpu", ["T4", "H100:0", "H100:9", "H100:x", "", "A10G:1"])
def test_unknown_gpu_or_count_is_rejected(gpu: str) -> None:
    """Unknown GPU types and counts outside 1..8 are ConfigErrors on the gpu field."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(gpu=gpu)
    assert err.value.field == "gpu"


@pytest.mark.parametrize("count", [3, 5, 6, 7])
def test_tensor_parallel_size_must_divide_the_attention_heads(count: int) -> None:
    """gpt-oss has 64 attention heads, so 3, 5, 6 or 7 GPUs cannot split it."""
    with pytest.raises(ConfigError, match="divides") as err:
        ServeConfig(gpu=f"H100:{count}")
    assert err.value.field == "gpu"


def test_tensor_parallel_size_is_the_gpu_count() -> None:
    """Each GPU of the container is one tensor-parallel rank."""
    assert ServeConfig(gpu="H100:4").tensor_parallel_size == 4


def test_120b_on_one_40gb_gpu_is_rejected() -> None:
    """120b's ~61 GiB of weights do not fit one A100-40GB: a clear error, not an OOM later."""
    with pytest.raises(ConfigError, match=r"needs ~67 GiB"):
        ServeConfig(model="120b", gpu="A100-40GB:1")


def test_120b_on_two_40gb_gpus_is_accepted() -> None:
    """Split over two A100-40GB, 120b fits."""
    assert ServeConfig(model="120b", gpu="A100-40GB:2").tensor_parallel_size == 2


def test_120b_on_one_h100_follows_the_recipe_memory_advice() -> None:
    """On one H100, 120b gets --gpu-memory-utilization 0.95 and --max-num-batched-tokens 1024."""
    c = ServeConfig(model="120b", gpu="H100:1").resolved()
    assert (c.gpu_memory_utilization, c.max_num_batched_tokens) == (0.95, 1024)


def test_user_values_beat_the_single_h100_advice() -> None:
    """Explicit values are never overwritten by derived ones."""
    c = ServeConfig(model="120b", gpu="H100:1", max_num_batched_tokens=2048).resolved()
    assert c.max_num_batched_tokens == 2048


def test_gpu_memory_utilization_too_low_for_the_weights_is_rejected() -> None:
    """Half of one H100 cannot hold 120b's weights."""
    with pytest.raises(ConfigError, match=r"gpu_memory_utilization 0\.5"):
        ServeConfig(model="120b", gpu="H100:1", gpu_memory_utilization=0.5)


@pytest.mark.parametrize("gpu", ["H100:1", "H200:1", "A100-80GB:1"])
def test_hopper_and_ampere_skip_fp8_kv_and_the_fused_passes(gpu: str) -> None:
    """Off Blackwell, the KV cache stays in the model dtype and no compilation passes are set."""
    c = ServeConfig(gpu=gpu).resolved()
    assert c.kv_cache_dtype == "auto"
    assert (c.fuse_allreduce_rms, c.eliminate_noops) == (None, None)


@pytest.mark.parametrize("name", ["balanced", "latency", "throughput", "seed"])
def test_profiles_fill_their_documented_defaults(name: str) -> None:
    """Each profile's values land in the resolved config."""
    profile = PROFILE_DEFAULTS[name]  # type: ignore[index]
    c = ServeConfig(profile=name).resolved()  # type: ignore[arg-type]
    assert c.max_inputs == profile.max_inputs
    assert c.max_num_seqs == profile.max_num_seqs
    assert c.max_num_batched_tokens == profile.max_num_batched_tokens
    assert c.stream_interval == profile.stream_interval
    assert c.speculative == profile.speculative
    per_input = 1 + (c.num_speculative_tokens or 0) if profile.capture_decode_tokens else 1
    assert c.max_cudagraph_capture_size == profile.max_inputs * per_input


def test_throughput_profile_keeps_an_explicit_draft() -> None:
    """Naming a draft turns speculative decoding on even where the profile leaves it off."""
    c = ServeConfig(profile="throughput", num_speculative_tokens=2).resolved()
    assert c.speculative
    assert c.num_speculative_tokens == 2


def test_speculative_can_be_turned_off() -> None:
    """speculative=False drops the draft entirely."""
    c = ServeConfig(speculative=False).resolved()
    assert not c.speculative
    assert c.speculative_model is None
    assert c.num_speculative_tokens is None


def test_draft_settings_with_speculative_off_are_an_error() -> None:
    """A draft model given while speculative decoding is off would be dropped, so it is an error."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(speculative=False, speculative_model="org/draft")
    assert err.value.field == "speculative"


def test_explicit_config_needs_a_draft_when_speculative() -> None:
    """With profile=None nothing is derived, so speculative=True needs its draft spelled out."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(profile=None)
    assert err.value.field == "speculative_model"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_inputs", 0),
        ("max_inputs", 1001),
        ("max_model_len", 131073),
        ("stream_interval", 0),
        ("num_speculative_tokens", 0),
        ("num_speculative_tokens", 16),
        ("port", 70000),
        ("gpu_memory_utilization", 0.0),
        ("gpu_memory_utilization", 1.5),
        ("kv_cache_dtype", "fp4"),
        ("revision", "has space"),
        ("speculative_model", "not a repo"),
        ("profile", "fast"),
        ("host", ""),
        ("served_model_names", ()),
        ("served_model_names", ("llm", "llm")),
        ("served_model_names", ("-llm",)),
    ],
)
def test_out_of_range_values_name_field_value_and_allowed(field: str, value: object) -> None:
    """Every invalid value is a ConfigError carrying the field, the value and what is allowed."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(**{field: value})  # type: ignore[arg-type]
    assert err.value.field == field
    assert err.value.value == value
    assert err.value.allowed
    assert field in str(err.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_inputs", "32"), ("fast_boot", "yes"), ("port", 80.0), ("async_scheduling", 1)],
)
def test_wrong_types_are_rejected_not_coerced(field: str, value: object) -> None:
    """Python callers get a typed error for a wrong type instead of a silent conversion."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(**{field: value})  # type: ignore[arg-type]
    assert err.value.field == field


def test_batched_tokens_below_max_num_seqs_is_rejected() -> None:
    """vLLM refuses max_num_batched_tokens < max_num_seqs at start; we refuse it up front."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(max_num_seqs=64, max_num_batched_tokens=32)
    assert err.value.field == "max_num_batched_tokens"


def test_resolved_config_is_explicit() -> None:
    """A resolved config has no profile and resolving it again changes nothing."""
    c = ServeConfig(profile="latency", gpu="H100:2").resolved()
    assert c.profile is None
    assert c.resolved() == c


@given(serve_configs())
def test_resolution_is_idempotent(config: ServeConfig) -> None:
    """Resolving an already resolved config returns an equal config."""
    assert config.resolved().resolved() == config.resolved()


@given(serve_configs())
def test_json_round_trip(config: ServeConfig) -> None:
    """from_json(to_json(c)) == c, so a config travels into the container unchanged."""
    assert ServeConfig.from_json(config.to_json()) == config
    assert ServeConfig.from_json(config.resolved().to_json()) == config.resolved()


def test_from_dict_rejects_unknown_keys_with_a_suggestion() -> None:
    """A misspelt key is an error that suggests the field meant, never silently dropped."""
    with pytest.raises(ConfigError, match="did you mean 'max_inputs'"):
        ServeConfig.from_dict({"max_input": 3})


def test_from_json_rejects_non_objects() -> None:
    """JSON that is not an object of fields is a ConfigError."""
    with pytest.raises(ConfigError):
        ServeConfig.from_json("[1, 2]")
    with pytest.raises(ConfigError):
        ServeConfig.from_json("{not json")


# ---- loading --------------------------------------------------------------------------------


def test_env_sets_typed_fields() -> None:
    """GPTOSS_* variables are read with the field's type: ints, bools, lists and 'auto'."""
    env = {
        "GPTOSS_MODEL": "gpt-oss-120b",
        "GPTOSS_GPU": "H200:2",
        "GPTOSS_MAX_INPUTS": "64",
        "GPTOSS_FAST_BOOT": "true",
        "GPTOSS_SERVED_MODEL_NAMES": "llm, gpt",
        "GPTOSS_KV_CACHE_DTYPE": "default",
        "GPTOSS_EXTRA_ARGS": "--seed 3",
        "UNRELATED": "x",
    }
    c = load_config(env=env)
    assert (c.model, c.gpu, c.max_inputs, c.fast_boot) == (
        "openai/gpt-oss-120b",
        "H200:2",
        64,
        True,
    )
    assert c.served_model_names == ("llm", "gpt")
    assert c.kv_cache_dtype is None
    assert c.extra_args == ("--seed", "3")


def test_bad_env_value_names_the_variable() -> None:
    """An unparsable environment value names the variable it came from."""
    with pytest.raises(ConfigError, match="GPTOSS_MAX_INPUTS"):
        load_config(env={"GPTOSS_MAX_INPUTS": "lots"})
    with pytest.raises(ConfigError, match="GPTOSS_FAST_BOOT"):
        load_config(env={"GPTOSS_FAST_BOOT": "maybe"})


def test_invalid_env_value_in_range_check_names_the_variable() -> None:
    """A well-typed but out-of-range environment value also names its variable."""
    with pytest.raises(ConfigError, match="environment GPTOSS_MAX_INPUTS"):
        load_config(env={"GPTOSS_MAX_INPUTS": "0"})


def test_toml_serve_table_is_read(tmp_path: Path) -> None:
    """A TOML file's [serve] table sets fields, 'auto' standing for None."""
    path = tmp_path / "gptoss.toml"
    path.write_text(
        '[serve]\nmodel = "120b"\ngpu = "H100:2"\nmax_inputs = 16\nstream_interval = "auto"\n'
    )
    c = load_config(path, env={})
    assert (c.model, c.gpu, c.max_inputs, c.stream_interval) == (
        "openai/gpt-oss-120b",
        "H100:2",
        16,
        None,
    )


def test_toml_unknown_key_is_an_error(tmp_path: Path) -> None:
    """An unknown key in [serve] names the file and suggests the right field."""
    path = tmp_path / "gptoss.toml"
    path.write_text("[serve]\nmax_imputs = 16\n")
    with pytest.raises(ConfigError, match="did you mean 'max_inputs'") as err:
        load_config(path, env={})
    assert err.value.source == str(path)


def test_toml_key_outside_serve_table_is_an_error(tmp_path: Path) -> None:
    """Keys must sit in a table; a loose key is reported, not ignored."""
    path = tmp_path / "gptoss.toml"
    path.write_text('model = "120b"\n')
    with pytest.raises(ConfigError, match="inside a table"):
        load_config(path, env={})


def test_missing_or_broken_toml_is_a_config_error(tmp_path: Path) -> None:
    """A missing file or invalid TOML is a ConfigError, not an OSError or decode error."""
    with pytest.raises(ConfigError):
        load_config(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[serve\n")
    with pytest.raises(ConfigError, match="valid TOML"):
        load_config(bad, env={})


def test_precedence_defaults_toml_env_overrides(tmp_path: Path) -> None:
    """Defaults < TOML < environment < overrides, key by key."""
    path = tmp_path / "gptoss.toml"
    path.write_text("[serve]\nmax_inputs = 16\nstream_interval = 5\nport = 9000\n")
    env = {"GPTOSS_STREAM_INTERVAL": "7", "GPTOSS_PORT": "9001"}
    c = load_config(path, env=env, overrides={"port": 9002})
    assert (c.max_inputs, c.stream_interval, c.port) == (16, 7, 9002)


def test_gptoss_config_env_names_the_toml_file(tmp_path: Path) -> None:
    """Without a path argument, $GPTOSS_CONFIG points at the TOML file."""
    path = tmp_path / "gptoss.toml"
    path.write_text("[serve]\nmax_inputs = 12\n")
    assert load_config(env={"GPTOSS_CONFIG": str(path)}).max_inputs == 12


def test_overrides_parse_key_value_pairs() -> None:
    """--set key=value pairs are typed like environment values; dashes may stand for underscores."""
    assert parse_overrides(["max-inputs=64", "fast_boot=1", "speculative_model=auto"]) == {
        "max_inputs": 64,
        "fast_boot": True,
        "speculative_model": None,
    }
    with pytest.raises(ConfigError):
        parse_overrides(["max_inputs"])
    with pytest.raises(ConfigError, match="did you mean"):
        parse_overrides(["max_input=3"])


def test_seed_config_carries_the_stream_interval_advisory() -> None:
    """The seed's stream_interval=20 with EAGLE3 hits vLLM 0.13.0's harmony batching bug: say so."""
    notes = ServeConfig(profile="seed").advisories()
    assert any("vllm-project/vllm#31501" in n and "stream_interval=20" in n for n in notes)


def test_single_token_streaming_without_drafts_has_no_batching_advisory() -> None:
    """stream_interval=1 without speculative decoding streams one token per chunk: no note."""
    notes = ServeConfig(stream_interval=1, speculative=False).advisories()
    assert not any("#31501" in n for n in notes)


def test_fast_boot_is_flagged_as_not_for_production() -> None:
    """fast_boot gets a note that it trades decode speed for start-up time."""
    assert any("fast_boot" in n for n in ServeConfig(fast_boot=True).advisories())


def test_kv_cache_auto_is_vllms_auto_from_every_source(tmp_path: Path) -> None:
    """'auto' is a kv_cache_dtype value, so it means vLLM's auto from a file and from the env."""
    path = tmp_path / "gptoss.toml"
    path.write_text('[serve]\nkv_cache_dtype = "auto"\n')
    assert load_config(path, env={}).resolved().kv_cache_dtype == "auto"
    assert load_config(env={"GPTOSS_KV_CACHE_DTYPE": "auto"}).resolved().kv_cache_dtype == "auto"
    assert load_config(env={"GPTOSS_KV_CACHE_DTYPE": "default"}).resolved().kv_cache_dtype == "fp8"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("served_model_names", "gpt"),
        ("served_model_names", 0),
        ("extra_args", None),
        ("extra_args", "--seed 3"),
        ("extra_args", ["--seed", 5]),
    ],
)
def test_list_fields_take_lists_of_strings_only(field: str, value: object) -> None:
    """A string is not split into characters and a number is not a token: both are ConfigErrors."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(**{field: value})  # type: ignore[arg-type]
    assert err.value.field == field
    assert "list of strings" in err.value.allowed


def test_toml_string_for_a_list_field_is_an_error(tmp_path: Path) -> None:
    """served_model_names = "gpt" in a file is refused, not read as ['g', 'p', 't']."""
    path = tmp_path / "gptoss.toml"
    path.write_text('[serve]\nserved_model_names = "gpt"\n')
    with pytest.raises(ConfigError, match="served_model_names"):
        load_config(path, env={})


def test_misspelt_table_is_an_error(tmp_path: Path) -> None:
    """A [serv] table would silently deploy the defaults, so it is refused with a suggestion."""
    path = tmp_path / "gptoss.toml"
    path.write_text('[serv]\nmodel = "120b"\n')
    with pytest.raises(ConfigError, match="did you mean 'serve'"):
        load_config(path, env={})


def test_unreadable_config_paths_are_config_errors(tmp_path: Path) -> None:
    """A directory or a non-UTF-8 file is a ConfigError naming the file, not an OSError."""
    with pytest.raises(ConfigError, match="readable UTF-8"):
        load_config(tmp_path, env={})
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b"[serve]\nhost = '\xe9'\n")
    with pytest.raises(ConfigError, match="readable UTF-8"):
        load_config(latin, env={})


def test_seed_capture_size_carries_the_cuda_graph_advisory() -> None:
    """The seed's capture size of 32 tokens covers only 4 requests with 7 draft tokens: say so."""
    notes = ServeConfig(profile="seed").advisories()
    assert any("more than 4 decoding requests" in n for n in notes)


def test_latency_profile_sizes_cuda_graphs_in_tokens() -> None:
    """The latency profile on vLLM 0.13.0 captures graphs for 8 requests of 1 + 7 tokens: 64."""
    config = ServeConfig(profile="latency", vllm_version="0.13.0")
    assert config.resolved().max_cudagraph_capture_size == 64
    assert not any("counts tokens" in n for n in config.advisories())


def test_text_loss_advisory_is_0_13_only() -> None:
    """The 0.13.0 multi-token text-loss note never fires on vLLM 0.33.0, which fixed it."""
    assert any("#31501" in n for n in ServeConfig(vllm_version="0.13.0").advisories())
    assert not any("#31501" in n for n in ServeConfig(vllm_version="0.33.0").advisories())


def test_capture_size_is_capped_by_the_batched_tokens() -> None:
    """vLLM caps the capture size at max_num_batched_tokens; the derived value does too."""
    c = ServeConfig(profile="latency", max_inputs=512, max_num_batched_tokens=1024).resolved()
    assert c.max_cudagraph_capture_size == 1024
