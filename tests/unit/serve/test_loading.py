"""One loading vocabulary for the serve config and the deploy settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_modal import ConfigError, load_config
from gptoss_modal.deploy import load_deploy_settings


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
