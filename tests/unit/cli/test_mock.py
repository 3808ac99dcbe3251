"""``gptoss-modal mock``: options made from MockConfig, usage errors, another process."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import urllib.request
import warnings

import pytest

from gptoss_modal import cli
from gptoss_modal.cli import mock
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VLLM_VERSIONS
from gptoss_modal.testing._config import cli_option
from gptoss_modal.testing.mock_server import FAULTS, MockConfig, spawn_mock_process


def test_a_bad_fault_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown fault exits 2 with the known faults named, before serving anything."""
    assert cli.main(["mock", "--port", "0", "--fault", "explode"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "fault='explode' is not allowed" in err
    assert all(name in err for name in FAULTS)


def _parsed(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(["mock", *argv])


def test_every_shown_config_field_is_an_option() -> None:
    """Each MockConfig field, bar those whose CliOption says why not, has an option whose dest
    is the field's name: a new field is a new option."""
    shown = {f.name for f in dataclasses.fields(MockConfig) if cli_option(f).hidden is None}
    hidden = {f.name for f in dataclasses.fields(MockConfig)} - shown
    assert hidden == {"reasoning_tokens", "record_send_times", "site_packages"}
    assert shown <= set(vars(_parsed()))


@pytest.mark.parametrize("version", VLLM_VERSIONS)
def test_vllm_picks_the_wire_format_and_defaults_to_the_package_default(version: str) -> None:
    """``--vllm`` sets the version served; without it the mock serves the package's default."""
    assert mock.config_from_args(_parsed("--vllm", version)).vllm_version == version
    assert mock.config_from_args(_parsed()).vllm_version == DEFAULT_VLLM_VERSION


def test_an_unsupported_vllm_version_is_refused_by_the_parser(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--vllm 0.20.0`` is a usage error that lists the supported versions."""
    with pytest.raises(SystemExit):
        _parsed("--vllm", "0.20.0")
    err = capsys.readouterr().err
    assert all(v in err for v in VLLM_VERSIONS)


def test_the_command_line_defaults_are_a_paced_server() -> None:
    """With no options the config is MockConfig's defaults, paced as the terminal server has
    always been (200 ms to the first token, 20 ms per token)."""
    config = mock.config_from_args(_parsed())
    assert config == dataclasses.replace(MockConfig(), ttft_ms=200.0, itl_ms=20.0)


def test_options_reach_their_fields() -> None:
    """Options of each kind (number, list, choice, switch, renamed switch, optional text) set
    their field."""
    args = _parsed(
        "--itl-ms", "3", "--served-model-name", "a", "b", "--reasoning-shape", "v0.16",
        "--no-tool-parser", "--one-event-per-write", "--fault", "drop:after=2",
        "--model", "root",
    )  # fmt: skip
    assert args.itl_ms == 3.0
    assert mock.config_from_args(args).served_model_names == ("a", "b")
    assert args.reasoning_shape == "v0.16"
    assert args.tool_parser is False
    assert args.coalesce_writes is False
    assert args.fault == "drop:after=2"
    assert args.model == "root"


def test_a_bad_config_value_names_its_field(capsys: pytest.CaptureFixture[str]) -> None:
    """A value MockConfig refuses exits 2 with the field named."""
    assert cli.main(["mock", "--port", "0", "--stream-interval", "0"]) == cli.EXIT_USAGE
    assert "stream_interval=0 is not allowed: >= 1" in capsys.readouterr().err


CHAT = json.dumps(
    {"model": "llm", "messages": [{"role": "user", "content": "hi"}], "stream": True}
).encode()
MAX_BATCHES = 50  # bounds the loop below; the clock ticks every 10 ms and a batch takes more


def _chat(url: str) -> bytes:
    request = urllib.request.Request(  # noqa: S310 - a local mock
        url + "/v1/chat/completions", data=CHAT, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body: bytes = response.read()
        return body


def test_the_mock_runs_in_another_process() -> None:
    """spawn_mock_process starts ``gptoss-modal mock``: its URL answers, and its CPU clock is
    the server's own (it has counted its start-up, and it grows as it serves streams)."""
    with spawn_mock_process(["--ttft-ms", "0", "--itl-ms", "0"]) as mock:
        with urllib.request.urlopen(mock.url + "/version", timeout=10) as response:  # noqa: S310
            assert response.read() == b'{"version":"0.33.0"}'
        before = mock.cpu_seconds()
        assert before > 0  # importing aiohttp and the package alone takes tens of ms
        for _ in range(MAX_BATCHES):
            for _ in range(20):
                assert _chat(mock.url).endswith(b"data: [DONE]\n\n")
            if mock.cpu_seconds() > before:
                break
        assert mock.cpu_seconds() > before


def test_the_spawned_mock_leaves_no_pipe_open() -> None:
    """Once spawn_mock_process's block ends, the child's stdout pipe is closed, not leaked."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with spawn_mock_process(["--ttft-ms", "0"]) as mock:
            assert mock.pid > 0
        gc.collect()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
