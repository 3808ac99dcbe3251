"""The one flag table, and extra_args validation against each vLLM version's option table."""

from __future__ import annotations

import pytest
from hypothesis import given

from gptoss_modal import ConfigError, ServeConfig, build_vllm_command
from gptoss_modal.serve.flags import (
    BY_SPELLING,
    FLAGS,
    OWNED_DESTS,
    owned_field,
    validate_extra_args,
    versions_with,
)
from gptoss_modal.serve.options import VLLM_VERSIONS, option_table
from tests.strategies import serve_configs


@pytest.mark.parametrize(
    "args",
    [
        (),
        ("--seed", "3"),
        ("--seed=3",),
        ("--enable-prefix-caching",),
        ("--uvicorn-log-level", "debug"),
        ("--allowed-origins", "https://a.example"),
        ("--seed", "-1"),
    ],
)
def test_valid_extra_args_pass_unchanged(args: tuple[str, ...]) -> None:
    """Known, unowned options with the right number of values are accepted as given."""
    assert validate_extra_args(args) == args


def test_unknown_option_suggests_the_close_one() -> None:
    """A typo names the option vLLM has."""
    with pytest.raises(ConfigError, match="did you mean --max-num-seqs"):
        validate_extra_args(["--max-num-seq", "8"])


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--max-num-seqs", "8"], "max_num_seqs"),
        (["-tp", "2"], "gpu"),
        (["--no-async-scheduling"], "async_scheduling"),
        (["--kv-cache-dtype=fp8"], "kv_cache_dtype"),
        (["-cc", "{}"], "fuse_allreduce_rms"),
    ],
)
def test_owned_options_point_to_their_field(args: list[str], field: str) -> None:
    """Options the config owns are refused with the field to set instead."""
    with pytest.raises(ConfigError, match=field):
        validate_extra_args(args)


def test_api_key_is_never_allowed_on_argv() -> None:
    """The API key belongs in VLLM_API_KEY: argv shows up in process listings and logs."""
    with pytest.raises(ConfigError, match="VLLM_API_KEY"):
        validate_extra_args(["--api-key", "sk-123"])


@pytest.mark.parametrize(
    "args",
    [["--seed"], ["--enable-prefix-caching", "yes"], ["--seed", "1", "2"], ["seed", "1"], ["--"]],
)
def test_wrong_arity_or_bare_values_are_errors(args: list[str]) -> None:
    """Each option gets exactly the values it takes; a stray value is an error."""
    with pytest.raises(ConfigError):
        validate_extra_args(args)


def test_restricted_choices_are_checked() -> None:
    """Values of options with choices must be one of them."""
    with pytest.raises(ConfigError, match="one of"):
        validate_extra_args(["--uvicorn-log-level", "loud"])


def test_owned_field_lookup() -> None:
    """owned_field maps a spelling (also --flag=value) to its config field or None."""
    assert owned_field("--max-model-len=4") == "max_model_len"
    assert owned_field("--seed") is None
    assert owned_field("--nope") is None


@pytest.mark.parametrize(
    "args", [["--api-key=sk-live-SECRET"], ["--hf-token", "hf_SECRET"], ["--hf-token=hf_SECRET"]]
)
def test_credentials_are_refused_without_echoing_them(args: list[str]) -> None:
    """Keys and Hub tokens never go on argv, and the refusal names the option, not the secret."""
    with pytest.raises(ConfigError) as err:
        validate_extra_args(args)
    assert "SECRET" not in str(err.value)
    assert "Modal Secret" in str(err.value)


def test_every_table_flag_is_a_vllm_option_the_config_owns() -> None:
    """Each row of the one flag table is a real option (in some supported vLLM) whose
    destination extra_args may not set."""
    for row in FLAGS:
        for spelling in (row.flag, row.off):
            if spelling is not None:
                versions = versions_with(spelling)
                assert versions, spelling
                options = option_table(versions[0]).options
                assert OWNED_DESTS[options[spelling].dest] == row.owned_by


@pytest.mark.parametrize("version", VLLM_VERSIONS)
def test_owned_options_are_refused_in_every_version(version: str) -> None:
    """Each version's spellings of an owned option are refused, naming the field to set."""
    for row in FLAGS:
        if row.flag in option_table(version).options:  # type: ignore[arg-type]
            with pytest.raises(ConfigError, match="not in extra_args"):
                validate_extra_args([row.flag], version=version)  # type: ignore[arg-type]


def test_a_flag_of_the_other_version_names_that_version() -> None:
    """--swap-space (0.13.0 only) and --moe-backend (0.33.0 only) say where they exist."""
    with pytest.raises(ConfigError, match=r"exists in vLLM 0\.13\.0"):
        validate_extra_args(["--swap-space", "4"], version="0.33.0")
    with pytest.raises(ConfigError, match=r"exists in vLLM 0\.33\.0"):
        validate_extra_args(["--moe-backend", "triton"], version="0.13.0")
    assert validate_extra_args(["--moe-backend", "triton"], version="0.33.0")


@given(serve_configs())
def test_builder_writes_only_flags_from_the_table(config: ServeConfig) -> None:
    """Every option the builder writes before extra_args is a spelling of the one table."""
    argv = build_vllm_command(config)
    modelled = argv[3 : len(argv) - len(config.extra_args)]
    assert {t for t in modelled if t.startswith("--")} <= set(BY_SPELLING)
