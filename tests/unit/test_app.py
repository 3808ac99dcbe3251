"""The Modal app as it would be deployed, checked offline: no Modal credentials, no network.

The app module is imported fresh for each test under the environment the test sets, as
``modal deploy`` would import it. What Modal's public ``Function.info()`` reports is checked
there; the rest (the web server's port and start-up timeout on the function's webhook config,
autoscaling arguments, the image's build steps) through spies on Modal's public API that
record the arguments and call the real methods.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import socket
import subprocess
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import modal
import modal.exception
import pytest

from gptoss_modal import ConfigError, PreflightError, ServeConfig, build_vllm_command, vllm_env
from gptoss_modal._exceptions import VllmStartupError
from gptoss_modal.deploy import (
    DEPLOYMENT_ENV,
    PINNED_PACKAGES,
    Deployment,
    HubRepo,
    load_deployment,
)
from gptoss_modal.deploy.preflight import PreflightReport, RepoCheck

# Modal's deprecation warnings are errors here whatever pytest's global filters say.
pytestmark = pytest.mark.filterwarnings("error::modal.exception.DeprecationError")

API_KEY = "sk-app-test-key-that-must-never-be-printed"
MINUTES = 60
LOOPBACK = ("127.0.0.1", "::1", "localhost")


# ---- fixtures ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Modal credentials, no Hub, no GPTOSS_* settings, and no connection off this machine."""
    for name in list(os.environ):
        if name.startswith(("GPTOSS_", "MODAL_")) or name in ("HF_TOKEN", "VLLM_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "no-modal.toml"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GPTOSS_PREFLIGHT", "off")

    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in LOOPBACK:
            raise AssertionError(f"the test tried to reach the network: {address!r}")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in LOOPBACK and host is not None:
            raise AssertionError(f"the test tried to resolve {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@dataclass
class Spy:
    """Calls to Modal's public API made while the app module was imported."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = field(default_factory=list)

    def named(self, name: str) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
        return [(args, kwargs) for n, args, kwargs in self.calls if n == name]

    def order(self) -> list[str]:
        return [n for n, _, _ in self.calls]


IMAGE_METHODS = ("entrypoint", "uv_pip_install", "run_commands", "env", "add_local_python_source")


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Spy:
    """Record the image build steps and App.function's arguments, delegating to Modal."""
    record = Spy()

    def wrap(name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            record.calls.append((name, args, kwargs))
            return original(self, *args, **kwargs)

        return method

    from_registry = modal.Image.from_registry

    def registry(*args: Any, **kwargs: Any) -> Any:
        record.calls.append(("from_registry", args, kwargs))
        return from_registry(*args, **kwargs)

    monkeypatch.setattr(modal.Image, "from_registry", staticmethod(registry))
    for name in IMAGE_METHODS:
        monkeypatch.setattr(modal.Image, name, wrap(name, getattr(modal.Image, name)))
    monkeypatch.setattr(modal.App, "function", wrap("function", modal.App.function))
    web_server = modal.web_server

    def recording_web_server(*args: Any, **kwargs: Any) -> Any:
        record.calls.append(("web_server", args, kwargs))
        return web_server(*args, **kwargs)

    monkeypatch.setattr(modal, "web_server", recording_web_server)
    return record


def web_server_config(spy: Spy) -> dict[str, Any]:
    """The arguments the app gave @modal.web_server (Modal's webhook config is built from them)."""
    ((args, kwargs),) = spy.named("web_server")
    assert args == ()
    return kwargs


def import_app(monkeypatch: pytest.MonkeyPatch, **env: str) -> ModuleType:
    """Import gptoss_modal.app afresh with these GPTOSS_* variables, as `modal deploy` would."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delitem(sys.modules, "gptoss_modal.app", raising=False)
    return importlib.import_module("gptoss_modal.app")


def import_in_container(
    monkeypatch: pytest.MonkeyPatch, deployment_json: str, **env: str
) -> ModuleType:
    """Import the app as the container does: not local, the deployment JSON in its env."""
    monkeypatch.setattr(modal, "is_local", lambda: False)
    monkeypatch.setenv(DEPLOYMENT_ENV, deployment_json)
    return import_app(monkeypatch, **env)


@dataclass
class Started:
    argv: list[str]
    kwargs: dict[str, Any]
    watched: list[Callable[[int, list[str]], None]] = field(default_factory=list)


@pytest.fixture
def fake_start(monkeypatch: pytest.MonkeyPatch) -> list[Started]:
    """Replace the launcher: record what the container would run instead of running vLLM."""
    started: list[Started] = []

    class FakeServer:
        def __init__(self, record: Started) -> None:
            self.record = record

        def watch(self, on_exit: Callable[[int, list[str]], None]) -> None:
            self.record.watched.append(on_exit)

    def start_server(argv: list[str], **kwargs: Any) -> FakeServer:
        record = Started(list(argv), kwargs)
        started.append(record)
        return FakeServer(record)

    monkeypatch.setattr("gptoss_modal.deploy.launch.start_server", start_server)
    return started


def run_serve(app: ModuleType) -> None:
    """Call the serve function's body in this process (Modal warns that volumes are absent)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will not have access to the mounted Volume")
        app.serve.local()


# ---- importing ----------------------------------------------------------------------------


def test_importing_the_app_needs_no_credentials_and_no_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The app module imports with no Modal token and no network, and defines its functions."""
    app = import_app(monkeypatch)
    assert isinstance(app.app, modal.App)
    assert app.app.name == "gptoss-modal"
    assert isinstance(app.serve, modal.Function)
    assert isinstance(app.download, modal.Function)


def test_importing_raises_no_modal_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """No deprecated Modal parameter is used: importing records no warning at all."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import_app(monkeypatch)
    assert [str(w.message) for w in caught] == []


def test_the_app_imports_none_of_the_local_tools(tmp_path: Path) -> None:
    """Importing the app loads neither the Hub preflight, our client nor huggingface_hub: the
    container imports this module too, and only the local side needs those."""
    code = (
        "import sys, gptoss_modal.app; "
        "print('LOADED:' + ','.join(m for m in ('gptoss_modal.deploy.preflight', "
        "'gptoss_modal.stream.client', "
        "'huggingface_hub') if m in sys.modules))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPTOSS_", "MODAL_"))}
    env |= {"GPTOSS_PREFLIGHT": "off", "MODAL_CONFIG_PATH": str(tmp_path / "none.toml")}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "LOADED:"


# ---- what info() reports ----------------------------------------------------------------------


def test_serve_runs_on_the_default_b200(monkeypatch: pytest.MonkeyPatch) -> None:
    """By default the server gets one B200."""
    assert import_app(monkeypatch).serve.info().gpus == [("B200", 1)]


def test_the_gpu_comes_from_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """GPTOSS_GPU=H100:2 gives two H100s and tensor parallelism over both."""
    app = import_app(monkeypatch, GPTOSS_MODEL="120b", GPTOSS_GPU="H100:2")
    assert app.serve.info().gpus == [("H100", 2)]
    assert app.DEPLOYMENT.argv[app.DEPLOYMENT.argv.index("--tensor-parallel-size") + 1] == "2"


def test_cache_volumes_are_mounted_where_the_tools_look(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hub, vLLM and FlashInfer caches are Volumes at their default cache paths."""
    volumes = import_app(monkeypatch).serve.info().volumes
    assert {path: mount.name for path, mount in volumes.items()} == {
        "/root/.cache/huggingface": "huggingface-cache",
        "/root/.cache/vllm": "vllm-cache",
        "/root/.cache/flashinfer": "flashinfer-cache",
    }
    assert not any(mount.read_only for mount in volumes.values())


def test_the_api_key_secret_is_attached(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default auth the server gets the API-key Secret, by its configured name."""
    app = import_app(monkeypatch, GPTOSS_SECRET_NAME="team-gpt-key")
    info = app.serve.info()
    assert info.secrets == ["modal.Secret.from_name('team-gpt-key')"]
    assert info.web_info is not None
    assert info.web_info.unauthenticated  # vLLM checks the key, not Modal's proxy


def test_proxy_auth_needs_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    """With proxy auth Modal's proxy checks requests and no API-key Secret is attached."""
    info = import_app(monkeypatch, GPTOSS_AUTH="proxy").serve.info()
    assert info.secrets == []
    assert info.web_info is not None
    assert not info.web_info.unauthenticated


def test_open_auth_attaches_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """With auth = 'none' there is neither a Secret nor proxy auth."""
    info = import_app(monkeypatch, GPTOSS_AUTH="none").serve.info()
    assert info.secrets == []
    assert info.web_info is not None
    assert info.web_info.unauthenticated


def test_a_hub_token_secret_is_attached_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """hf_secret_name adds that Secret to the server and to the download function."""
    app = import_app(monkeypatch, GPTOSS_HF_SECRET_NAME="hf-read")
    assert "modal.Secret.from_name('hf-read')" in app.serve.info().secrets
    assert app.download.info().secrets == ["modal.Secret.from_name('hf-read')"]


def test_timeouts_cover_a_first_flashinfer_compile(
    monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    """The function's start-up timeout and the web server's are 30 minutes by default."""
    info = import_app(monkeypatch).serve.info()
    assert info.startup_timeout == 30 * MINUTES
    assert info.timeout == 30 * MINUTES
    assert web_server_config(spy)["startup_timeout"] == 30 * MINUTES


def test_timeouts_follow_the_settings(monkeypatch: pytest.MonkeyPatch, spy: Spy) -> None:
    """GPTOSS_STARTUP_TIMEOUT_S and GPTOSS_TIMEOUT_S reach both timeouts."""
    app = import_app(monkeypatch, GPTOSS_STARTUP_TIMEOUT_S="2400", GPTOSS_TIMEOUT_S="600")
    info = app.serve.info()
    assert (info.startup_timeout, info.timeout) == (2400, 600)
    assert web_server_config(spy)["startup_timeout"] == 2400


def test_concurrency_equals_the_cuda_graph_capture_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """@modal.concurrent takes as many inputs as CUDA graphs are captured for (32, seed profile)."""
    app = import_app(monkeypatch, GPTOSS_PROFILE="seed")
    assert app.serve.info().concurrency_info.max_inputs == 32
    argv = app.DEPLOYMENT.argv
    assert argv[argv.index("--max-cudagraph-capture-size") + 1] == "32"


def test_concurrency_follows_max_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """GPTOSS_MAX_INPUTS=8 sets both Modal's concurrency and the capture size."""
    app = import_app(monkeypatch, GPTOSS_MAX_INPUTS="8", GPTOSS_PROFILE="seed")
    assert app.serve.info().concurrency_info.max_inputs == 8
    argv = app.DEPLOYMENT.argv
    assert argv[argv.index("--max-cudagraph-capture-size") + 1] == "8"


@pytest.mark.parametrize("port", ["8000", "9001"])
def test_the_web_server_listens_on_vllms_port(
    monkeypatch: pytest.MonkeyPatch, spy: Spy, port: str
) -> None:
    """Modal proxies to the port vLLM is told to bind (8000, or the configured one)."""
    app = import_app(monkeypatch, GPTOSS_PORT=port)
    assert web_server_config(spy)["port"] == int(port)
    assert app.DEPLOYMENT.argv[app.DEPLOYMENT.argv.index("--port") + 1] == port


@pytest.mark.parametrize(("auth", "proxy"), [("api_key", False), ("proxy", True), ("none", False)])
def test_proxy_auth_is_on_only_in_proxy_mode(
    monkeypatch: pytest.MonkeyPatch, spy: Spy, auth: str, proxy: bool
) -> None:
    """requires_proxy_auth is set exactly when auth = 'proxy'."""
    import_app(monkeypatch, GPTOSS_AUTH=auth)
    assert web_server_config(spy)["requires_proxy_auth"] is proxy


def test_download_runs_without_a_gpu_on_the_hub_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    """The download function needs no GPU and mounts only the Hugging Face cache."""
    info = import_app(monkeypatch).download.info()
    assert info.gpus == []
    assert list(info.volumes) == ["/root/.cache/huggingface"]
    assert info.timeout == 60 * MINUTES


# ---- what info() does not report: autoscaling and the image ---------------------------------


def _serve_function_kwargs(spy: Spy) -> dict[str, Any]:
    return next(kwargs for _, kwargs in spy.named("function") if "gpu" in kwargs)


def test_autoscaling_uses_the_settings(monkeypatch: pytest.MonkeyPatch, spy: Spy) -> None:
    """Scaledown window and container limits go to App.function as configured."""
    import_app(
        monkeypatch,
        GPTOSS_MIN_CONTAINERS="1",
        GPTOSS_MAX_CONTAINERS="3",
        GPTOSS_SCALEDOWN_WINDOW_S="300",
    )
    kwargs = _serve_function_kwargs(spy)
    assert kwargs["min_containers"] == 1
    assert kwargs["max_containers"] == 3
    assert kwargs["scaledown_window"] == 300


def test_autoscaling_defaults_scale_to_zero(monkeypatch: pytest.MonkeyPatch, spy: Spy) -> None:
    """By default no container is kept warm and an idle one stops after 10 minutes."""
    import_app(monkeypatch)
    kwargs = _serve_function_kwargs(spy)
    assert (kwargs["min_containers"], kwargs["max_containers"]) == (0, None)
    assert kwargs["scaledown_window"] == 10 * MINUTES


def test_the_image_is_cuda_devel_with_pinned_packages(
    monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    """The image starts from CUDA 13 devel with Python 3.12 and pins vLLM and the Hub client."""
    import_app(monkeypatch)
    ((args, kwargs),) = spy.named("from_registry")
    assert args == ("nvidia/cuda:13.0.1-devel-ubuntu24.04",)
    assert kwargs == {"add_python": "3.12"}
    ((packages, _),) = spy.named("uv_pip_install")
    assert packages == PINNED_PACKAGES
    assert "vllm==0.33.0" in packages


def test_the_image_bakes_in_the_tiktoken_vocabulary(
    monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    """The harmony vocabulary is fetched at build time and its directory set in the env."""
    import_app(monkeypatch)
    ((commands, _),) = spy.named("run_commands")
    assert any("o200k_base.tiktoken" in c for c in commands)
    ((env,), _) = spy.named("env")[0]
    assert env["TIKTOKEN_ENCODINGS_BASE"] == "/root/tiktoken_encodings"


def test_the_image_env_carries_the_deployment(monkeypatch: pytest.MonkeyPatch, spy: Spy) -> None:
    """The image env holds the builder's GPU variables and the resolved deployment's JSON."""
    app = import_app(
        monkeypatch, GPTOSS_GPU="B200:1", GPTOSS_PROFILE="latency", GPTOSS_VLLM_VERSION="0.13.0"
    )
    ((env,), _) = spy.named("env")[0]
    assert env["VLLM_USE_FLASHINFER_MOE_MXFP4_MXFP8"] == "1"
    assert Deployment.from_json(env[DEPLOYMENT_ENV]) == app.DEPLOYMENT
    assert json.loads(env[DEPLOYMENT_ENV])["serve"]["profile"] is None  # resolved


def test_the_package_is_added_last_as_local_source(
    monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    """The package is mounted as local source after every build step, so edits rebuild nothing."""
    import_app(monkeypatch)
    image_steps = [n for n in spy.order() if n in ("from_registry", *IMAGE_METHODS)]
    assert image_steps[-1] == "add_local_python_source"
    assert spy.named("add_local_python_source") == [(("gptoss_modal",), {})]


# ---- config travels into the container --------------------------------------------------


def test_the_container_runs_the_builders_argv_for_the_deployed_config(
    monkeypatch: pytest.MonkeyPatch, fake_start: list[Started]
) -> None:
    """The container ignores its own GPTOSS_* env and runs build_vllm_command(deployed config)."""
    deployed = import_app(monkeypatch, GPTOSS_GPU="H200:1", GPTOSS_MAX_INPUTS="16").DEPLOYMENT
    container = import_in_container(
        monkeypatch,
        deployed.to_json(),
        GPTOSS_GPU="B200:1",  # a different local setting the container must not use
        GPTOSS_MAX_INPUTS="64",
        VLLM_API_KEY=API_KEY,
    )
    assert deployed == container.DEPLOYMENT
    assert container.serve.info().concurrency_info.max_inputs == 16
    run_serve(container)
    (started,) = fake_start
    assert started.argv == build_vllm_command(ServeConfig(gpu="H200:1", max_inputs=16))
    assert started.kwargs["env"] == vllm_env(deployed.serve)
    assert started.kwargs["port"] == 8000
    assert started.kwargs["host"] == "127.0.0.1"  # vLLM binds 0.0.0.0, loopback included
    assert len(started.watched) == 1  # a later vLLM exit stops the container


def test_a_vllm_that_dies_starting_fails_the_container(monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher's start-up error propagates out of serve, so the container fails at once."""
    container = import_in_container(
        monkeypatch, load_deployment(env={}).to_json(), VLLM_API_KEY=API_KEY
    )

    def dies(argv: list[str], **kwargs: Any) -> None:
        raise VllmStartupError("vllm exited with code 1", returncode=1, log_tail=["OOM"])

    monkeypatch.setattr("gptoss_modal.deploy.launch.start_server", dies)
    with pytest.raises(VllmStartupError, match="OOM"):
        run_serve(container)


def test_the_container_without_its_deployment_json_fails_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A container image without the deployment JSON refuses to guess a config."""
    monkeypatch.setattr(modal, "is_local", lambda: False)
    monkeypatch.delenv(DEPLOYMENT_ENV, raising=False)
    with pytest.raises(ConfigError, match="redeploy"):
        import_app(monkeypatch)


def test_the_container_refuses_to_serve_without_its_key(
    monkeypatch: pytest.MonkeyPatch, fake_start: list[Started]
) -> None:
    """With api_key auth and an empty VLLM_API_KEY, vLLM is not started (it would run open)."""
    deployment = load_deployment(env={})
    container = import_in_container(monkeypatch, deployment.to_json(), VLLM_API_KEY=" ")
    with pytest.raises(ConfigError, match="VLLM_API_KEY"):
        run_serve(container)
    assert fake_start == []


def test_the_key_reaches_vllm_only_through_its_environment(
    monkeypatch: pytest.MonkeyPatch, fake_start: list[Started], capsys: pytest.CaptureFixture[str]
) -> None:
    """The key is never on argv or in what the container prints; it is redacted from vLLM's log."""
    container = import_in_container(
        monkeypatch, load_deployment(env={}).to_json(), VLLM_API_KEY=API_KEY
    )
    run_serve(container)
    (started,) = fake_start
    assert API_KEY not in " ".join(started.argv)
    assert API_KEY not in json.dumps(started.kwargs["env"])
    assert API_KEY in started.kwargs["secrets"]  # the launcher redacts it from every log line
    assert os.environ["VLLM_API_KEY"] == API_KEY  # vLLM inherits it from the container env
    out = capsys.readouterr()
    assert "starting vLLM: vllm serve openai/gpt-oss-20b" in out.out
    assert API_KEY not in out.out + out.err


def test_open_auth_is_loud_at_deploy_and_in_the_container(
    monkeypatch: pytest.MonkeyPatch, fake_start: list[Started], capsys: pytest.CaptureFixture[str]
) -> None:
    """auth = 'none' prints a warning banner when deploying and when each container starts."""
    deployed = import_app(monkeypatch, GPTOSS_AUTH="none").DEPLOYMENT
    assert "answers ANYONE" in capsys.readouterr().err
    container = import_in_container(monkeypatch, deployed.to_json())
    run_serve(container)
    assert "answers ANYONE" in capsys.readouterr().err
    assert len(fake_start) == 1


# ---- what is printed and checked at deploy time -------------------------------------------


def test_the_config_is_printed_at_deploy_time_without_the_key(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Importing locally prints the resolved config and the argv; a local key is not shown."""
    app = import_app(monkeypatch, GPTOSS_API_KEY=API_KEY, VLLM_API_KEY=API_KEY)
    out = capsys.readouterr()
    assert app.DEPLOYMENT.serve.to_json() in out.out
    assert "vllm serve openai/gpt-oss-20b" in out.out
    assert API_KEY not in out.out + out.err


def _report(status: str) -> PreflightReport:
    repo = HubRepo("model", "openai/gpt-oss-20b-typo", "main")
    return PreflightReport((RepoCheck(repo, status, "no such repo"),), token_used=False)  # type: ignore[arg-type]


def _no_secret_check(monkeypatch: pytest.MonkeyPatch) -> None:
    def hydrate(self: Any, *args: Any, **kwargs: Any) -> Any:
        return self

    monkeypatch.setattr(modal.Secret, "hydrate", hydrate)


def test_a_failed_hub_preflight_stops_the_deploy(monkeypatch: pytest.MonkeyPatch) -> None:
    """In strict mode (the default) a repo the Hub does not have stops the import, so deploy."""
    monkeypatch.setattr(
        "gptoss_modal.deploy.preflight.run_preflight", lambda *a, **k: _report("not_found")
    )
    _no_secret_check(monkeypatch)
    with pytest.raises(PreflightError, match="gpt-oss-20b-typo"):
        import_app(monkeypatch, GPTOSS_PREFLIGHT="strict")


def test_warn_mode_prints_the_failure_and_deploys(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GPTOSS_PREFLIGHT=warn reports the failed check and lets the deploy go on."""
    monkeypatch.setattr(
        "gptoss_modal.deploy.preflight.run_preflight", lambda *a, **k: _report("not_found")
    )
    _no_secret_check(monkeypatch)
    import_app(monkeypatch, GPTOSS_PREFLIGHT="warn")
    assert "gpt-oss-20b-typo" in capsys.readouterr().out


def test_an_unreachable_hub_only_warns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In strict mode an unreachable Hub is reported but does not stop the deploy."""
    report = _report("unreachable")
    monkeypatch.setattr("gptoss_modal.deploy.preflight.run_preflight", lambda *a, **k: report)
    _no_secret_check(monkeypatch)
    app = import_app(monkeypatch, GPTOSS_PREFLIGHT="strict")
    assert app.serve is not None  # the import, so the deploy, went on
    out = capsys.readouterr().out
    assert report.summary() in out
    assert "gpt-oss-20b-typo" in out


def test_a_missing_key_secret_says_how_to_create_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deploying api_key auth without its Secret fails with the command that creates it."""
    monkeypatch.setattr(
        "gptoss_modal.deploy.preflight.run_preflight", lambda *a, **k: _report("ok")
    )

    def hydrate(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise modal.exception.NotFoundError("Secret 'gptoss-api-key' not found")

    monkeypatch.setattr(modal.Secret, "hydrate", hydrate)
    with pytest.raises(ConfigError, match="modal secret create gptoss-api-key VLLM_API_KEY="):
        import_app(monkeypatch, GPTOSS_PREFLIGHT="strict")


def test_an_unverifiable_secret_only_warns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without Modal credentials the Secret cannot be checked: a warning, and Modal checks later."""
    monkeypatch.setattr(
        "gptoss_modal.deploy.preflight.run_preflight", lambda *a, **k: _report("ok")
    )

    def hydrate(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise modal.exception.AuthError("Token missing")

    monkeypatch.setattr(modal.Secret, "hydrate", hydrate)
    import_app(monkeypatch, GPTOSS_PREFLIGHT="strict")
    assert "could not check the Modal Secret 'gptoss-api-key'" in capsys.readouterr().err


# ---- the local entrypoint -----------------------------------------------------------------


def test_every_entrypoint_parameter_is_annotated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Modal only parses annotated parameters; an unannotated bool would arrive as a string."""
    app = import_app(monkeypatch)
    signature = inspect.signature(app.main.info.raw_f)
    assert signature.parameters
    missing = [
        name for name, p in signature.parameters.items() if p.annotation is inspect.Parameter.empty
    ]
    assert missing == []
    assert signature.parameters["twice"].annotation in (bool, "bool")


async def test_the_entrypoint_needs_the_client_key_before_waking_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without GPTOSS_API_KEY the entrypoint stops before asking for the URL (no GPU wakes)."""
    app = import_app(monkeypatch)

    def no_url() -> str:
        raise AssertionError("the server was contacted")

    monkeypatch.setattr(app.serve, "get_web_url", no_url)
    with pytest.raises(ConfigError, match="GPTOSS_API_KEY"):
        await app.main.info.raw_f()


class WebUrl:
    """A stand-in for ``serve.get_web_url``: the coroutine form only, as the entrypoint is async."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __call__(self) -> str:
        raise AssertionError("blocking get_web_url() in a coroutine (Modal's AsyncUsageWarning)")

    async def aio(self) -> str:
        return self.url


async def test_the_entrypoint_streams_twice_and_prints_timings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Against the mock vLLM it waits for health, streams plain then pirate, prints timings."""
    from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

    app = import_app(monkeypatch, GPTOSS_API_KEY=API_KEY)
    async with MockVLLM(MockConfig(api_keys=(API_KEY,), content_tokens=8)) as mock:
        monkeypatch.setattr(app.serve, "get_web_url", WebUrl(mock.url))
        await app.main.info.raw_f(prompt="What is an SVD?", twice=True, max_tokens=64)
    out = capsys.readouterr()
    assert "healthy after" in out.out
    assert out.out.count(">>> user: What is an SVD?") == 2
    assert "Talk like a pirate" in out.out
    assert out.out.count("time to first token") == 2
    assert "tokens/s" in out.out
    assert API_KEY not in out.out + out.err


# ---- cold_start = "snapshot": the shape Modal requires -------------------------------------


@pytest.fixture
def from_local(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What App.cls hands to Modal's own Function constructor (after Modal's own processing)."""
    import modal._functions

    seen: list[dict[str, Any]] = []
    original = modal._functions._Function._from_local

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(modal._functions._Function, "_from_local", staticmethod(spy))
    return seen


def test_plain_mode_defines_the_serve_function_and_no_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default start is today's app: a serve function, no snapshot class."""
    app = import_app(monkeypatch)
    assert isinstance(app.serve, modal.Function)
    assert not hasattr(app, "Server")


def test_snapshot_mode_is_a_class_with_memory_and_gpu_snapshots(
    monkeypatch: pytest.MonkeyPatch, from_local: list[dict[str, Any]]
) -> None:
    """GPTOSS_COLD_START=snapshot: a Modal Cls whose service function Modal builds with memory
    snapshots on and the GPU snapshot option (stringified, as Modal stores it)."""
    app = import_app(monkeypatch, GPTOSS_COLD_START="snapshot")
    assert isinstance(app.Server, modal.Cls)
    assert not hasattr(app, "serve")
    (service,) = [kw for kw in from_local if kw.get("enable_memory_snapshot")]
    assert service["experimental_options"] == {"enable_gpu_snapshot": "True"}
    info = app.Server._get_class_service_function().info()
    assert info.gpus == [("B200", 1)]
    assert info.concurrency_info is not None
    assert info.concurrency_info.max_inputs == app.DEPLOYMENT.max_inputs
    assert info.startup_timeout == app.SETTINGS.startup_timeout_s
    assert info.method_names == ["serve"]


def test_snapshot_mode_has_one_hook_before_and_one_after_the_snapshot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Modal's own lookup finds start_and_sleep before the snapshot and wake after it."""
    from modal._partial_function import _find_partial_methods_for_user_cls, _PartialFunctionFlags

    user_cls = import_app(monkeypatch, GPTOSS_COLD_START="snapshot").Server._get_user_cls()
    flags = _PartialFunctionFlags
    before = _find_partial_methods_for_user_cls(user_cls, flags.ENTER_PRE_SNAPSHOT)
    after = _find_partial_methods_for_user_cls(user_cls, flags.ENTER_POST_SNAPSHOT)
    assert list(before) == ["start_and_sleep"]
    assert list(after) == ["wake"]


def test_snapshot_mode_serves_the_same_port_with_the_same_auth(
    monkeypatch: pytest.MonkeyPatch, spy: Spy
) -> None:
    """The class's web server is vLLM's port, with proxy auth exactly when auth = 'proxy'."""
    import_app(monkeypatch, GPTOSS_COLD_START="snapshot", GPTOSS_AUTH="proxy")
    config = web_server_config(spy)
    assert config["port"] == 8000
    assert config["requires_proxy_auth"] is True


def test_snapshot_mode_on_two_gpus_fails_the_import_clearly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A multi-GPU snapshot is refused when the app is imported, naming cold_start."""
    with pytest.raises(ConfigError, match="cold_start"):
        import_app(
            monkeypatch, GPTOSS_COLD_START="snapshot", GPTOSS_MODEL="120b", GPTOSS_GPU="H100:2"
        )
