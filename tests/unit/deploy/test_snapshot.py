"""The snapshot start: the cold_start setting, the sleep-mode argv and env per vLLM version, the
dev-endpoint guard, the output canary and the loud exit after a failed restore."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any, NoReturn

import modal._runtime.gpu_memory_snapshot as modal_gpu_snapshot
import pytest

from gptoss_modal import ConfigError, ServeConfig, SnapshotError, option_table
from gptoss_modal.deploy import Deployment, DeploySettings, load_deploy_settings
from gptoss_modal.deploy.dev_guard import DEV_TOKEN_HEADER, DevEndpointGuard, dev_allowed
from gptoss_modal.deploy.snapshot import (
    RESTORE_FAILED_EXIT_CODE,
    check_canary,
    restore_or_exit,
)
from gptoss_modal.serve import VLLM_VERSIONS
from gptoss_modal.serve.sleep import DEV_GUARD, DEV_PATHS, sleep_mode
from gptoss_modal.stream.accumulator import ChatResult
from gptoss_modal.stream.chunks import StreamEnd, parse_chat_chunk
from gptoss_modal.stream.sse import ServerSentEvent

TOKEN = "per-container-dev-token-0123456789"

# ---- the setting ----------------------------------------------------------------------------


def test_cold_start_defaults_to_plain() -> None:
    """Without a setting a container starts as it always has."""
    assert load_deploy_settings(env={}).cold_start == "plain"


def test_cold_start_comes_from_the_environment_and_the_toml(tmp_path: Path) -> None:
    """GPTOSS_COLD_START and [deploy] cold_start set it; the environment wins."""
    toml = tmp_path / "gptoss.toml"
    toml.write_text('[deploy]\ncold_start = "snapshot"\n')
    assert load_deploy_settings(toml, env={}).cold_start == "snapshot"
    env = {"GPTOSS_COLD_START": "plain"}
    assert load_deploy_settings(toml, env=env).cold_start == "plain"


def test_an_unknown_cold_start_names_the_field_and_the_choices() -> None:
    """A typo is a ConfigError naming cold_start, what is allowed, and where it came from."""
    with pytest.raises(ConfigError, match=r"'plain'.*'snapshot'") as caught:
        load_deploy_settings(env={"GPTOSS_COLD_START": "fast"})
    assert caught.value.field == "cold_start"
    assert "GPTOSS_COLD_START" in str(caught.value.source)


def test_a_snapshot_of_several_gpus_is_refused() -> None:
    """Tensor parallel over two GPUs cannot be snapshotted here: a ConfigError says so."""
    with pytest.raises(ConfigError, match="one GPU") as caught:
        Deployment(ServeConfig(model="120b", gpu="H100:2"), DeploySettings(cold_start="snapshot"))
    assert caught.value.field == "cold_start"


def test_the_setting_survives_the_deployment_json() -> None:
    """The container reads the same start mode the deploying machine chose."""
    deployment = Deployment(ServeConfig(), DeploySettings(cold_start="snapshot"))
    assert Deployment.from_json(deployment.to_json()).settings.cold_start == "snapshot"


# ---- argv and env per version ---------------------------------------------------------------


@pytest.mark.parametrize("version", VLLM_VERSIONS)
def test_the_snapshot_argv_is_the_builders_plus_sleep_mode_and_the_guard(version: str) -> None:
    """The builder's argv unchanged, then --enable-sleep-mode and --middleware <our guard>."""
    deployment = Deployment(
        ServeConfig(vllm_version=version),  # type: ignore[arg-type]
        DeploySettings(cold_start="snapshot"),
    )
    argv = deployment.snapshot_argv
    assert argv[: len(deployment.argv)] == deployment.argv
    assert argv[len(deployment.argv) :] == ["--enable-sleep-mode", "--middleware", DEV_GUARD]


@pytest.mark.parametrize("version", VLLM_VERSIONS)
def test_every_sleep_flag_and_variable_exists_in_that_vllm(version: str) -> None:
    """Each added flag is an option and each variable an env var of that version's table."""
    table = option_table(version)  # type: ignore[arg-type]
    mode = sleep_mode(version)  # type: ignore[arg-type]
    flags = [token for token in mode.flags if token.startswith("--")]
    assert flags
    assert all(flag in table.options for flag in flags)
    assert mode.env == {"VLLM_SERVER_DEV_MODE": "1"}
    assert all(name in table.env_vars for name in mode.env)


def test_the_guard_is_importable_by_the_path_vllm_is_given() -> None:
    """vLLM imports --middleware by its dotted path: it must name our class."""
    module, _, name = DEV_GUARD.rpartition(".")
    assert getattr(__import__(module, fromlist=[name]), name) is DevEndpointGuard


# ---- the guard ------------------------------------------------------------------------------


async def _through_guard(path: str, headers: list[tuple[bytes, bytes]], token: str | None) -> int:
    """The status a request to ``path`` gets through the guard in front of an app that says 200."""
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    guard = DevEndpointGuard(app, token=token)
    await guard({"type": "http", "path": path, "headers": headers}, receive, send)
    return int(sent[0]["status"])


@pytest.mark.parametrize("path", sorted(DEV_PATHS))
async def test_every_dev_path_is_refused_from_outside(path: str) -> None:
    """Without the container's token each dev route is a 404, as without dev mode."""
    assert await _through_guard(path, [], TOKEN) == 404
    assert await _through_guard(path, [(DEV_TOKEN_HEADER.encode(), b"guess")], TOKEN) == 404


async def test_the_container_with_its_token_reaches_the_dev_paths() -> None:
    """The lifecycle's own requests carry the token and pass."""
    header = [(b"X-GPTOSS-DEV-TOKEN", TOKEN.encode())]
    assert await _through_guard("/sleep", header, TOKEN) == 200


async def test_without_a_configured_token_every_dev_path_is_refused() -> None:
    """A guard with no token refuses dev paths even to a request that sends an empty one."""
    assert await _through_guard("/wake_up", [(DEV_TOKEN_HEADER.encode(), b"")], None) == 404


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/health", "/metrics", "/sleepy"])
def test_the_served_paths_pass_without_a_token(path: str) -> None:
    """Only the dev paths are guarded: the API, /health and /metrics are untouched."""
    assert dev_allowed(path, [], TOKEN)


def test_a_trailing_slash_does_not_slip_past() -> None:
    """'/sleep/' is the same dev route."""
    assert not dev_allowed("/sleep/", [], TOKEN)


# ---- the canary -----------------------------------------------------------------------------


def _result(content: str, finish: str | None = "stop") -> ChatResult:
    result = ChatResult()
    delta = {"role": "assistant", "content": content}
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    chunk = parse_chat_chunk(ServerSentEvent(json.dumps(body)), arrival=0.1)
    assert not isinstance(chunk, StreamEnd)
    result.chunks.append(chunk)
    return result


def test_a_well_formed_answer_passes_the_canary() -> None:
    """Finished by a stop, non-empty, printable: the answer comes back."""
    assert check_canary(_result("4")) == "4"


@pytest.mark.parametrize(
    ("content", "finish", "says"),
    [
        ("", "stop", "empty"),
        ("  ", "stop", "empty"),
        ("4", "length", "finish_reason"),
        ("\ufffd\ufffd", "stop", "garbled"),
        ("4\x00\x07", "stop", "garbled"),
    ],
)
def test_an_answer_that_is_not_well_formed_fails_the_canary(
    content: str, finish: str, says: str
) -> None:
    """Empty, cut short, or full of replacement or control characters: a canary SnapshotError."""
    with pytest.raises(SnapshotError, match=says) as caught:
        check_canary(_result(content, finish))
    assert caught.value.step == "canary"


# ---- after a failed restore -----------------------------------------------------------------


def test_the_exit_code_is_the_one_modal_retries_without_the_snapshot() -> None:
    """Our constant is Modal SDK's own sentinel (modal/_runtime/gpu_memory_snapshot.py)."""
    assert modal_gpu_snapshot.SNAPSHOT_RESTORE_FAILED_EXIT_CODE == RESTORE_FAILED_EXIT_CODE


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _exit(code: int) -> NoReturn:
    raise _Exited(code)


async def test_a_failed_restore_is_loud_and_exits_with_the_sentinel() -> None:
    """A SnapshotError after restore prints a banner naming the step and exits with 222."""

    async def fails() -> str:
        raise SnapshotError("canary", "the answer is empty")

    log = io.StringIO()
    with pytest.raises(_Exited) as caught:
        await restore_or_exit(fails(), exit=_exit, log=log)
    assert caught.value.code == 222
    assert "GPU SNAPSHOT RESTORE FAILED: snapshot canary: the answer is empty" in log.getvalue()


async def test_a_good_restore_returns_the_canary_answer_without_exiting() -> None:
    """Nothing is printed and nothing exits when the restore steps pass."""

    async def passes() -> str:
        await asyncio.sleep(0)
        return "4"

    log = io.StringIO()
    assert await restore_or_exit(passes(), exit=_exit, log=log) == "4"
    assert log.getvalue() == ""
