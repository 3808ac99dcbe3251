"""The Responses API's serve settings: ``tool_server`` and ``response_store`` from every config
source, their flag and variable in both vLLM versions, their errors and their advisories."""

from __future__ import annotations

from pathlib import Path

import pytest

from gptoss_modal import ConfigError, ServeConfig, build_vllm_command, load_config, vllm_env
from gptoss_modal.cli import EXIT_OK, main
from gptoss_modal.serve.command import parse_vllm_command
from gptoss_modal.serve.config import parse_overrides
from gptoss_modal.serve.options import VLLM_VERSIONS, VllmVersion

STORE_ENV = "VLLM_ENABLE_RESPONSES_API_STORE"


def _tail(config: ServeConfig) -> list[str]:
    """The argv after --tool-server (empty when it is not passed)."""
    argv = build_vllm_command(config)
    return argv[argv.index("--tool-server") :] if "--tool-server" in argv else []


def test_both_settings_are_off_by_default() -> None:
    """The default config passes no --tool-server and sets no store variable."""
    config = ServeConfig()
    assert (config.tool_server, config.response_store) == (None, False)
    assert _tail(config) == []
    assert STORE_ENV not in vllm_env(config)


@pytest.mark.parametrize("version", VLLM_VERSIONS)
@pytest.mark.parametrize(
    ("value", "flag_value"),
    [
        ("demo", "demo"),
        ("DEMO ", "demo"),
        (("localhost:8001",), "localhost:8001"),
        (["tools.internal:9000", "10.0.0.7:8002"], "tools.internal:9000,10.0.0.7:8002"),
        ("a:1, b:2", "a:1,b:2"),
    ],
)
def test_tool_server_renders_as_one_flag_value(
    version: VllmVersion, value: str | tuple[str, ...] | list[str], flag_value: str
) -> None:
    """'demo' or the MCP list becomes --tool-server VALUE (comma-joined) in each version."""
    config = ServeConfig(tool_server=value, vllm_version=version)  # type: ignore[arg-type]
    assert _tail(config)[:2] == ["--tool-server", flag_value]


@pytest.mark.parametrize("version", VLLM_VERSIONS)
def test_response_store_is_the_variable_in_each_version(version: VllmVersion) -> None:
    """response_store=True sets VLLM_ENABLE_RESPONSES_API_STORE=1 under either vLLM."""
    assert vllm_env(ServeConfig(response_store=True, vllm_version=version))[STORE_ENV] == "1"


@pytest.mark.parametrize("version", VLLM_VERSIONS)
def test_both_round_trip_through_argv_and_env(version: VllmVersion) -> None:
    """parse(build(c)) gives back the same tool servers and store switch."""
    config = ServeConfig(
        tool_server=("a.example:1", "b:65535"), response_store=True, vllm_version=version
    ).resolved()
    parsed = parse_vllm_command(
        build_vllm_command(config),
        vllm_env(config),
        gpu=config.gpu,
        max_inputs=config.max_inputs,
        vllm_version=version,
    )
    assert parsed == config
    assert parsed.tool_server == ("a.example:1", "b:65535")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "localhost",
        "http://a:1",
        "a:0",
        "a:65536",
        "a:1/sse",
        ("a:1", "a:1"),
        (),
        ("demo", "a:1"),
    ],
)
def test_bad_tool_server_names_the_field_and_what_is_allowed(bad: object) -> None:
    """A value that is neither 'demo' nor host:port entries is a ConfigError on tool_server."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(tool_server=bad)  # type: ignore[arg-type]
    assert err.value.field == "tool_server"
    assert "'demo' or a list of MCP servers as host:port" in str(err.value)


def test_tool_server_of_the_wrong_type_is_refused() -> None:
    """A number is a type error naming the field, not a crash."""
    with pytest.raises(ConfigError) as err:
        ServeConfig(tool_server=8001)  # type: ignore[arg-type]
    assert err.value.field == "tool_server"


def test_both_load_from_toml_env_and_overrides(tmp_path: Path) -> None:
    """TOML lists, GPTOSS_TOOL_SERVER / GPTOSS_RESPONSE_STORE and --set all reach the config,
    with the usual precedence (environment beats the file, overrides beat both)."""
    toml = tmp_path / "c.toml"
    toml.write_text('[serve]\ntool_server = ["a:1", "b:2"]\nresponse_store = true\n')
    assert load_config(toml, env={}).tool_server == ("a:1", "b:2")
    assert load_config(toml, env={}).response_store is True
    env = {"GPTOSS_TOOL_SERVER": "demo", "GPTOSS_RESPONSE_STORE": "false"}
    from_env = load_config(toml, env=env)
    assert (from_env.tool_server, from_env.response_store) == ("demo", False)
    overrides = parse_overrides(["tool_server=c:3,d:4"])
    assert load_config(toml, env=env, overrides=overrides).tool_server == ("c:3", "d:4")
    assert load_config(env={"GPTOSS_TOOL_SERVER": ""}).tool_server is None  # unset


def test_bad_env_value_names_the_variable() -> None:
    """A bad GPTOSS_TOOL_SERVER says it came from that variable."""
    with pytest.raises(ConfigError) as err:
        load_config(env={"GPTOSS_TOOL_SERVER": "https://tools:1"})
    assert err.value.field == "tool_server"
    assert "GPTOSS_TOOL_SERVER" in str(err.value)


def test_json_round_trip_keeps_the_list() -> None:
    """The config carried into the container keeps the MCP servers as a tuple."""
    config = ServeConfig(tool_server=("a:1", "b:2"), response_store=True)
    assert ServeConfig.from_json(config.to_json()) == config


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"tool_server": "demo"}, ("python tool runs code the model writes", "EXA_API_KEY")),
        ({"tool_server": ("a:1",)}, ("MCP server", "/sse")),
        ({"response_store": True}, ("no eviction", "Modal-Session-ID")),
    ],
)
def test_each_setting_has_its_advisory(changes: dict[str, object], words: tuple[str, ...]) -> None:
    """Turning a setting on adds exactly one note, which says what the docs warn about."""
    notes = ServeConfig(**changes).advisories()  # type: ignore[arg-type]
    assert len(notes) == 1
    assert all(word in notes[0] for word in words), notes[0]


def test_command_cli_flags_reach_argv_and_env(capsys: pytest.CaptureFixture[str]) -> None:
    """`gptoss-modal command --tool-server ... --response-store` prints both, and the notes."""
    argv = ["command", "--tool-server", "a:1,b:2", "--response-store", "--json"]
    assert main(argv) == EXIT_OK
    captured = capsys.readouterr()
    assert '"--tool-server",\n    "a:1,b:2"' in captured.out
    assert f'"{STORE_ENV}": "1"' in captured.out
    assert "MCP server" in captured.err
    assert "no eviction" in captured.err
