"""`gptoss-modal command`: prints argv and env, as text or JSON, with clear errors."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from gptoss_modal import ServeConfig, build_vllm_command
from gptoss_modal.cli import EXIT_OK, EXIT_USAGE, main

# `gptoss-modal command` output captured before the default moved to vLLM 0.33.0.
SEED_DIR = Path(__file__).with_name("seed")
# Fields added to ServeConfig since, with the values the seed profile resolves them to.
NEW_FIELDS = {
    "vllm_version": "0.13.0",
    "mxfp8_moe": True,
    "per_request_metrics": False,
    "startup_plan": False,
    "system_start_date": None,
    "tool_server": None,
    "response_store": False,
}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own GPTOSS_* settings out of these tests."""
    import os

    for key in list(os.environ):
        if key.startswith("GPTOSS_"):
            monkeypatch.delenv(key)


def test_seed_prints_env_and_the_shell_quoted_seed(capsys: pytest.CaptureFixture[str]) -> None:
    """Seed output is the export line and the shell-quoted argv, which splits back exactly."""
    assert main(["command", "--profile", "seed"]) == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "export VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8=1"
    assert shlex.split(lines[1]) == build_vllm_command(ServeConfig(profile="seed"))


def test_seed_profile_output_is_the_seed_byte_for_byte(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`command --profile seed` prints what `command` printed before the default moved, stdout
    and stderr (its two advisories) byte for byte."""
    assert main(["command", "--profile", "seed"]) == EXIT_OK
    out = capsys.readouterr()
    assert out.out == (SEED_DIR / "seed-command.txt").read_text(encoding="utf-8")
    assert out.err == (SEED_DIR / "seed-command.err").read_text(encoding="utf-8")


def test_seed_profile_json_is_the_seed_plus_the_new_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`command --profile seed --json` is the seed's JSON byte for byte once the fields added
    since (the vLLM version and the 0.33.0 options, all at their seed values) are left out."""
    assert main(["command", "--profile", "seed", "--json"]) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    added = {key: payload["config"].pop(key) for key in NEW_FIELDS}
    assert added == NEW_FIELDS
    seed = (SEED_DIR / "seed-command.json").read_text(encoding="utf-8")
    assert json.dumps(payload, indent=2) + "\n" == seed


def test_default_prints_a_0_33_command_and_no_warning(capsys: pytest.CaptureFixture[str]) -> None:
    """The default is vLLM 0.33.0's command with no environment and no note about itself."""
    assert main(["command"]) == EXIT_OK
    out = capsys.readouterr()
    assert out.err == ""
    assert shlex.split(out.out) == build_vllm_command(ServeConfig())
    assert "--quantization-config" in out.out


def test_vllm_flag_picks_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--vllm 0.13.0 builds for 0.13.0 (its MoE variable) and --json reports the version."""
    assert main(["command", "--vllm", "0.13.0", "--json"]) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["config"]["vllm_version"] == "0.13.0"
    assert payload["env"] == {"VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8": "1"}
    assert main(["command", "--vllm", "0.2"]) == EXIT_USAGE


def test_json_output_has_argv_env_and_resolved_config(capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints argv, env and the resolved config."""
    assert main(["command", "--json", "--gpu", "H100:2", "--profile", "latency"]) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["env"] == {}
    assert payload["config"]["gpu"] == "H100:2"
    assert payload["config"]["max_num_seqs"] == 8
    assert payload["argv"] == build_vllm_command(ServeConfig(gpu="H100:2", profile="latency"))


def test_120b_on_one_h100_gets_the_recipe_advice(capsys: pytest.CaptureFixture[str]) -> None:
    """--model gpt-oss-120b --gpu H100:1 gives the recipe's single-H100 memory settings."""
    assert main(["command", "--model", "gpt-oss-120b", "--gpu", "H100:1"]) == EXIT_OK
    argv = shlex.split(capsys.readouterr().out.splitlines()[-1])
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.95"
    assert argv[argv.index("--max-num-batched-tokens") + 1] == "1024"


def test_invalid_gpu_exits_2_naming_the_source(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad value exits with the usage code and says it came from the command line."""
    assert main(["command", "--gpu", "T4"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "gpu='T4' (from command line)" in err


def test_set_and_config_file_combine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--set overrides the TOML file, which overrides defaults."""
    path = tmp_path / "c.toml"
    path.write_text("[serve]\nmax_inputs = 16\nport = 9000\n")
    code = main(["command", "--json", "--config", str(path), "--set", "port=9001"])
    assert code == EXIT_OK
    config = json.loads(capsys.readouterr().out)["config"]
    assert (config["max_inputs"], config["port"]) == (16, 9001)


def test_env_is_read(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """GPTOSS_* variables feed the command, below command-line flags."""
    monkeypatch.setenv("GPTOSS_GPU", "H200:1")
    monkeypatch.setenv("GPTOSS_MAX_INPUTS", "48")
    assert main(["command", "--json"]) == EXIT_OK
    config = json.loads(capsys.readouterr().out)["config"]
    assert (config["gpu"], config["max_inputs"]) == ("H200:1", 48)


def test_unknown_set_key_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt --set key exits 2 with a suggestion."""
    assert main(["command", "--set", "max_input=3"]) == EXIT_USAGE
    assert "did you mean 'max_inputs'" in capsys.readouterr().err


def test_bad_choice_is_a_usage_error() -> None:
    """argparse's own usage errors (an unknown profile) exit 2."""
    assert main(["command", "--profile", "fastest"]) == EXIT_USAGE
