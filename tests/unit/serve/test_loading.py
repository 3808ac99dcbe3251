"""One loading vocabulary for the serve config and the deploy settings."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from gptoss_modal import ConfigError, ServeConfig, load_config
from gptoss_modal.deploy import load_deploy_settings
from gptoss_modal.serve.config import parse_overrides
from gptoss_modal.serve.loading import ENV_VARIABLES, check_env_names, known_env_names


@pytest.mark.parametrize("word", ["", "default", "none", "null", "auto"])
def test_derive_words_unset_optional_fields_in_both_loaders(word: str) -> None:
    """The same words unset an optional field of the serve config and of the deploy settings."""
    assert load_config(env={"GPTOSS_REVISION": word}).revision is None
    assert load_deploy_settings(env={"GPTOSS_MAX_CONTAINERS": word}).max_containers is None


def test_a_literal_none_stays_a_value_where_it_is_one() -> None:
    """auth = none is a choice, not an unset value, because the field is not optional."""
    assert load_deploy_settings(env={"GPTOSS_AUTH": "none"}).auth == "none"


def test_one_file_holds_both_tables(tmp_path: Path) -> None:
    """[serve] and [deploy] in one file each reach their own loader."""
    path = tmp_path / "gptoss.toml"
    path.write_text("[serve]\nmax_inputs = 16\n\n[deploy]\nmax_containers = 3\n")
    assert load_config(path, env={}).max_inputs == 16
    assert load_deploy_settings(path, env={}).max_containers == 3


def test_misspelt_table_fails_both_loaders(tmp_path: Path) -> None:
    """A [deplyo] table is an error for whichever loader reads the file first."""
    path = tmp_path / "gptoss.toml"
    path.write_text("[deplyo]\nmax_containers = 3\n")
    for load in (load_config, load_deploy_settings):
        with pytest.raises(ConfigError, match="did you mean 'deploy'"):
            load(path, env={})


# Names the docs and tests write as examples of a wrong or placeholder name.
EXAMPLE_TYPOS = ("GPTOSS_X", "GPTOSS_GPUS", "GPTOSS_QQQQQ", "GPTOSS_API_KY")


def test_a_misspelt_variable_fails_both_loaders_naming_the_closest() -> None:
    """GPTOSS_GPUS is an error (not a silent B200:1) that names GPTOSS_GPU, in both loaders."""
    for load in (load_config, load_deploy_settings):
        with pytest.raises(ConfigError, match=r"GPTOSS_GPUS .*did you mean 'GPTOSS_GPU'") as info:
            load(env={"GPTOSS_GPUS": "H100:2"})
        assert "H100:2" not in str(info.value)


@pytest.mark.parametrize(
    "name",
    ["GPTOSS_AUTH", "GPTOSS_API_KEY", "GPTOSS_MODAL_SECRET", "GPTOSS_E2E_GPU", "GPTOSS_CONFIG"],
)
def test_every_reader_s_variables_are_known(name: str) -> None:
    """The deploy settings', the client's and the e2e suite's variables are not typos."""
    assert name in known_env_names()
    check_env_names({name: "x"})


def test_an_unknown_variable_far_from_every_name_suggests_none() -> None:
    """A name close to nothing is refused without a made-up suggestion (the shared GPTOSS_
    prefix alone does not make two names close)."""
    with pytest.raises(ConfigError) as info:
        check_env_names({"GPTOSS_QQQQQ": "1"})
    assert "did you mean" not in str(info.value)


def test_the_known_names_are_the_ones_the_project_mentions() -> None:
    """Every GPTOSS_* name written in the source, tests, scripts and docs is known, and every
    name in ENV_VARIABLES is written somewhere else: the list is the one fact, kept whole."""
    root = Path(__file__).parents[3]
    files = [
        p
        for folder in ("src", "tests", "scripts", "docs")
        for p in (root / folder).rglob("*")
        if p.suffix in {".py", ".md", ".sh", ".toml"} and p.is_file()
    ] + [root / "Makefile"]
    written = set()
    for path in files:
        if path.name != "test_loading.py" and path.name != "loading.py":
            written |= set(re.findall(r"GPTOSS_[A-Z0-9_]*[A-Z0-9]", path.read_text("utf-8")))
    written -= {"GPTOSS_E2E", *EXAMPLE_TYPOS}  # the e2e prefix, and names written to be wrong
    assert written - known_env_names() == set()
    assert set(ENV_VARIABLES) - written == set()
    documented = (root / "docs" / "configuration.md").read_text("utf-8")
    assert [name for name in ENV_VARIABLES if f"`{name}`" not in documented] == []


@pytest.mark.parametrize(
    "extra",
    [
        "--api_key=sk-SECRET",
        "--api-key=sk-SECRET",
        "--seed 1 sk-SECRET",
        "--seed=1 sk-SECRET",
        "--enable-prefix-caching sk-SECRET",
        "--uvicorn-log-level sk-SECRET",
        "--api-key 'sk-SECRET",
        "sk-SECRET",
    ],
)
def test_extra_args_errors_never_show_a_value(extra: str) -> None:
    """Every way extra_args can be refused names options only, never what follows them."""
    with pytest.raises(ConfigError) as info:
        load_config(env={}, overrides=parse_overrides([f"extra_args={extra}"]))
    assert "SECRET" not in str(info.value)
    assert "SECRET" not in repr(info.value.args)
    assert "extra_args" in str(info.value)


@pytest.mark.parametrize(
    ("load", "where"),
    [
        (lambda: parse_overrides(["extra_arg=--api-key=sk-SECRET"]), "extra_arg"),
        (lambda: ServeConfig.from_dict({"extra_arg": ["--api-key=sk-SECRET"]}), "extra_arg"),
        (lambda: ServeConfig.from_json('{"extra_args": ["--api-key=sk-SECRET"'), "JSON"),
        (lambda: ServeConfig(extra_args="--api-key=sk-SECRET"), "extra_args"),  # type: ignore[arg-type]
    ],
)
def test_unknown_or_mistyped_keys_never_show_a_value(
    load: Callable[[], object], where: str
) -> None:
    """An unknown key, unreadable JSON or a mistyped extra_args is named without its value."""
    with pytest.raises(ConfigError, match=where) as info:
        load()
    assert "SECRET" not in str(info.value)


def test_toml_errors_never_show_a_value(tmp_path: Path) -> None:
    """A key outside a table, or an unknown one inside, is named without its value."""
    for text in ('extra_args = "--api-key=sk-SECRET"\n', '[serve]\nextra_arg = "sk-SECRET"\n'):
        path = tmp_path / "gptoss.toml"
        path.write_text(text)
        with pytest.raises(ConfigError, match="extra_arg") as info:
            load_config(path, env={})
        assert "SECRET" not in str(info.value)
