"""The snapshot lifecycle against the mock vLLM: the app's two enter hooks in order, and the
lifecycle functions against a mock that fails the canary, one that never wakes, and one whose
process dies while asleep."""

from __future__ import annotations

import asyncio
import importlib
import io
import socket
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn, cast

import modal
import pytest

from gptoss_modal import SnapshotError
from gptoss_modal.deploy import DEPLOYMENT_ENV, load_deployment
from gptoss_modal.deploy.dev_guard import DEV_TOKEN_HEADER
from gptoss_modal.deploy.launch import start_server
from gptoss_modal.deploy.snapshot import (
    RESTORE_FAILED_EXIT_CODE,
    SnapshotTimeouts,
    after_restore,
    before_snapshot,
)
from gptoss_modal.serve.options import VllmVersion
from gptoss_modal.serve.sleep import sleep_mode
from gptoss_modal.stream.client import Client
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

API_KEY = "sk-snapshot-lifecycle-key"
HEADERS = {DEV_TOKEN_HEADER: "unused-by-the-mock"}
FAST = SnapshotTimeouts(health_s=10, request_s=10, control_s=5, wake_s=1.5, poll_s=0.05)


@dataclass
class FakeEngine:
    """A vLLM process that is running until told otherwise."""

    code: int | None = None
    lines: list[str] = field(default_factory=lambda: ["INFO engine ready"])

    def returncode(self) -> int | None:
        return self.code

    def log_tail(self) -> list[str]:
        return list(self.lines)


@pytest.fixture(params=["0.13.0", "0.33.0"])
def version(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def _mock(version: str, **options: Any) -> MockVLLM:
    config = MockConfig(
        dev_mode=True, vllm_version=cast(VllmVersion, version), api_keys=(API_KEY,), **options
    )
    server = MockVLLM(config)
    await server.start()
    return server


async def _before(server: MockVLLM, engine: FakeEngine, calls: list[str], version: str) -> None:
    async with Client(server.url, api_key=API_KEY) as client:
        await before_snapshot(
            client,
            engine,
            dev_headers=HEADERS,
            sleep_params=sleep_mode(version).sleep_params,  # type: ignore[arg-type]
            commit_volumes=lambda: calls.append("commit"),
            timeouts=FAST,
            log=io.StringIO(),
        )


async def _after(server: MockVLLM, engine: FakeEngine, calls: list[str]) -> str:
    async with Client(server.url, api_key=API_KEY) as client:
        return await after_restore(
            client,
            engine,
            dev_headers=HEADERS,
            reload_volumes=lambda: calls.append("reload"),
            timeouts=FAST,
            log=io.StringIO(),
        )


async def test_the_lifecycle_sleeps_before_and_wakes_after(version: str) -> None:
    """Before: warm-up, commit, asleep. After: reload, awake, a canary answer, engine alive."""
    server = await _mock(version)
    engine, calls = FakeEngine(), list[str]()
    try:
        await _before(server, engine, calls, version)
        assert server.sleep.sleeping  # what Modal snapshots is a sleeping engine
        assert server.requests_seen == 1  # the warm-up
        answer = await _after(server, engine, calls)
        assert answer.strip()
        assert not server.sleep.sleeping
        assert not server.engine_dead
        assert calls == ["commit", "reload"]
    finally:
        await server.stop()


async def test_a_mock_that_garbles_after_wake_fails_the_canary(version: str) -> None:
    """The restored engine's first answer is malformed: the canary step fails."""
    server = await _mock(version, sleep_fault="garbled-after-wake")
    engine: FakeEngine = FakeEngine()
    try:
        await _before(server, engine, [], version)
        with pytest.raises(SnapshotError) as caught:
            await _after(server, engine, [])
        assert caught.value.step == "canary"
    finally:
        await server.stop()


async def test_a_mock_that_never_wakes_fails_the_wake_in_time(version: str) -> None:
    """/wake_up answers but /is_sleeping stays true: the wake step fails after wake_s."""
    server = await _mock(version, sleep_fault="never-wakes")
    engine = FakeEngine()
    try:
        await _before(server, engine, [], version)
        with pytest.raises(SnapshotError, match="still true") as caught:
            await _after(server, engine, [])
        assert caught.value.step == "wake"
        assert server.requests_seen == 1  # no canary was sent to a sleeping engine
    finally:
        await server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_vllm_that_dies_while_asleep_fails_the_wake_with_its_log() -> None:
    """The mock's process is killed between the hooks: the wake fails at once, with its exit
    code and last lines, instead of waiting out a timeout."""
    port = _free_port()
    argv = [sys.executable, "-m", "gptoss_modal", "mock", "--port", str(port), "--dev-mode"]
    argv += ["--ttft-ms", "0", "--itl-ms", "0", "--api-key", API_KEY]
    server = await asyncio.to_thread(
        start_server, argv, port=port, startup_timeout_s=30, log=io.StringIO()
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with Client(url, api_key=API_KEY) as client:
            await before_snapshot(
                client,
                server,
                dev_headers=HEADERS,
                sleep_params={"level": "1"},
                commit_volumes=lambda: None,
                timeouts=FAST,
                log=io.StringIO(),
            )
        server.process.kill()
        await asyncio.to_thread(server.process.wait)
        async with Client(url, api_key=API_KEY) as client:
            with pytest.raises(SnapshotError, match="exited with code -9") as caught:
                await after_restore(
                    client,
                    server,
                    dev_headers=HEADERS,
                    reload_volumes=lambda: None,
                    timeouts=FAST,
                    log=io.StringIO(),
                )
        assert caught.value.step == "wake"
    finally:
        if server.returncode() is None:
            await asyncio.to_thread(server.stop, 5)


# ---- the app's own hooks, in order, against the mock -----------------------------------------


@dataclass
class Exited(Exception):
    code: int


def _import_snapshot_app(monkeypatch: pytest.MonkeyPatch, port: int, tmp: Path) -> ModuleType:
    """The app as a restored container imports it: snapshot mode, the mock's port."""
    for name in [n for n in list(sys.modules) if n == "gptoss_modal.app"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp / "none.toml"))
    env = {"GPTOSS_COLD_START": "snapshot", "GPTOSS_PORT": str(port), "GPTOSS_PREFLIGHT": "off"}
    deployment = load_deployment(env=env)
    monkeypatch.setattr(modal, "is_local", lambda: False)
    monkeypatch.setenv(DEPLOYMENT_ENV, deployment.to_json())
    monkeypatch.setenv("VLLM_API_KEY", API_KEY)
    return importlib.import_module("gptoss_modal.app")


async def _run_hooks(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: MockVLLM
) -> tuple[list[str], list[int], FakeEngine]:
    """Run the class's snap=True then snap=False hooks; returns the Volume calls, the exit
    codes asked for, and the engine the launcher 'started'."""
    app = _import_snapshot_app(monkeypatch, server.port, tmp_path)
    calls: list[str] = []
    exits: list[int] = []
    engine = FakeEngine()
    monkeypatch.setattr(app.vllm_cache_volume, "commit", lambda: calls.append("commit vllm"))
    monkeypatch.setattr(app.flashinfer_cache_volume, "commit", lambda: calls.append("commit fi"))
    for name in ("hf_cache_volume", "vllm_cache_volume", "flashinfer_cache_volume"):
        monkeypatch.setattr(
            getattr(app, name), "reload", lambda n=name: calls.append(f"reload {n}")
        )

    started: list[tuple[list[str], dict[str, Any]]] = []

    def fake_start(argv: list[str], **kwargs: Any) -> FakeEngine:
        started.append((list(argv), kwargs))
        return engine

    def fake_exit(code: int) -> NoReturn:
        exits.append(code)
        raise Exited(code)

    monkeypatch.setattr("gptoss_modal.deploy.launch.start_server", fake_start)
    monkeypatch.setattr(app.os, "_exit", fake_exit)
    monkeypatch.setattr(FakeEngine, "watch", lambda self, on_exit: None, raising=False)
    obj = app.Server._get_user_cls()()
    from modal._partial_function import _find_callables_for_obj, _PartialFunctionFlags

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for flag in (
            _PartialFunctionFlags.ENTER_PRE_SNAPSHOT,
            _PartialFunctionFlags.ENTER_POST_SNAPSHOT,
        ):
            for hook in _find_callables_for_obj(obj, flag).values():
                try:
                    await hook()
                except Exited:
                    break
    ((argv, kwargs),) = started
    assert API_KEY not in " ".join(argv)  # the key reaches vLLM through its environment only
    assert API_KEY in kwargs["secrets"]
    assert "--enable-sleep-mode" in argv
    assert kwargs["env"]["VLLM_SERVER_DEV_MODE"] == "1"
    return calls, exits, engine


async def test_the_apps_hooks_run_in_order_against_the_mock(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """snap=True leaves a sleeping engine and committed caches; snap=False reloads and wakes."""
    server = await _mock("0.33.0")
    try:
        calls, exits, _ = await _run_hooks(monkeypatch, tmp_path, server)
        assert exits == []
        assert calls[:2] == ["commit vllm", "commit fi"]
        assert calls[2:] == [
            "reload hf_cache_volume",
            "reload vllm_cache_volume",
            "reload flashinfer_cache_volume",
        ]
        assert not server.sleep.sleeping
        assert server.requests_seen == 2  # the warm-up and the canary
    finally:
        await server.stop()


async def test_the_apps_restore_hook_exits_with_the_sentinel_on_a_bad_canary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A garbled answer after wake: a loud banner, and os._exit(222) so Modal retries plain."""
    server = await _mock("0.33.0", sleep_fault="garbled-after-wake")
    try:
        _, exits, _ = await _run_hooks(monkeypatch, tmp_path, server)
        assert exits == [RESTORE_FAILED_EXIT_CODE]
        assert "GPU SNAPSHOT RESTORE FAILED: snapshot canary" in capsys.readouterr().err
    finally:
        await server.stop()
