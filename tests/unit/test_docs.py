"""The documentation stays in step with the code."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gptoss_modal import ServeConfig
from gptoss_modal.serve.presets import GPUS, PROFILES

ROOT = Path(__file__).resolve().parents[2]


def test_every_config_field_is_documented() -> None:
    """docs/configuration.md has a row for each ServeConfig field."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [f.name for f in dataclasses.fields(ServeConfig) if f"| `{f.name}` |" not in text]
    assert missing == []


def test_every_gpu_and_profile_is_documented() -> None:
    """Each supported GPU type and each profile appears in the configuration reference."""
    text = (ROOT / "docs" / "configuration.md").read_text()
    assert all(f"`{gpu}`" in text for gpu in GPUS)
    assert all(f"`{profile}`" in text for profile in PROFILES)


def test_readme_shows_the_default_command(capsys: pytest.CaptureFixture[str]) -> None:
    """The default command printed in the README is what `gptoss-modal command` prints."""
    from gptoss_modal.cli import main

    assert main(["command"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    readme = (ROOT / "README.md").read_text().splitlines()
    assert all(line in readme for line in printed)
