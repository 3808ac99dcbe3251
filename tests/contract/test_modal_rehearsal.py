"""Rehearse ``modal deploy``, ``modal run`` and ``modal app stop`` offline: the real ``modal``
CLI from the project's venv, in a subprocess, against a local stand-in for Modal's control
plane (``tests.modal_stub``), with fake credentials and no route beyond loopback.

What Modal's client sends is what Modal would build: each test reads the recorded requests
(the function definitions, the image layers, the Secret and Volume lookups) and checks them
against the config the deploy was given.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status
from modal_proto import api_grpc, api_pb2

from gptoss_modal.deploy import (
    API_KEY_ENV,
    DEPLOYMENT_ENV,
    Deployment,
    load_deployment,
    missing_secret_message,
)
from gptoss_modal.deploy.image import (
    IMAGES,
    TIKTOKEN_BASE_URL,
    TIKTOKEN_DIR,
    TIKTOKEN_VOCABULARIES,
)
from gptoss_modal.deploy.settings import DeploySettings
from gptoss_modal.serve.options import VllmVersion
from tests.modal_stub import CLI_TIMEOUT_S, WEB_URL_SUFFIX, ModalStub, method_names, run_modal

# Under `make test` (pytest -n N --dist loadgroup) the module runs in one worker: its stub and
# its deploys are module-scoped, and spread over N workers each would deploy every case again.
pytestmark = pytest.mark.xdist_group("modal-rehearsal")

APP_MODULE = "gptoss_modal.app"
APP_SPEC = importlib.util.find_spec(APP_MODULE)  # the app the CLI will import (not run here)
assert APP_SPEC is not None
assert APP_SPEC.origin is not None
APP_SOURCE = Path(APP_SPEC.origin)
SECRET_NAME = DeploySettings().secret_name
# The three caches the serve function mounts, and the one the download function mounts.
CACHE_PATHS = ("/root/.cache/huggingface", "/root/.cache/vllm", "/root/.cache/flashinfer")
HF_CACHE = CACHE_PATHS[0]
CACHE_VOLUMES = {
    "/root/.cache/huggingface": "huggingface-cache",
    "/root/.cache/vllm": "vllm-cache",
    "/root/.cache/flashinfer": "flashinfer-cache",
}
PACKAGE_ROOT = "/root/gptoss_modal/"  # where add_local_python_source puts the package


@pytest.fixture(scope="module")
def stub() -> Iterator[ModalStub]:
    """One control-plane stub for the module, holding the API-key Secret with its key."""
    with ModalStub(secrets={SECRET_NAME: {API_KEY_ENV: "rehearsal-key"}}) as server:
        yield server


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A HOME (and Modal config) of the rehearsal's own: nothing of the developer's."""
    return tmp_path_factory.mktemp("modal-home")


# ---- what one deploy sent ---------------------------------------------------------------


@dataclass
class Deployed:
    """One ``modal deploy`` run: its output and what the stub recorded for it."""

    result: subprocess.CompletedProcess[str]
    functions: dict[str, api_pb2.Function]  # by function name
    images: dict[str, api_pb2.Image]  # image id -> layer definition (this run's)
    mounts: dict[str, api_pb2.MountGetOrCreateRequest]  # mount id -> its request
    methods: list[str]

    def layers(self, function: str) -> list[api_pb2.Image]:
        """The function's image as layers, base first (each layer names its parent)."""
        chain: list[api_pb2.Image] = []
        image_id = self.functions[function].image_id
        while image_id:
            layer = self.images[image_id]
            chain.append(layer)
            image_id = layer.base_images[0].image_id if layer.base_images else ""
        return chain[::-1]

    def commands(self, function: str) -> list[list[str]]:
        """Each layer's Dockerfile commands, without the ``FROM base`` that links layers."""
        return [
            [c for c in layer.dockerfile_commands if c != "FROM base"]
            for layer in self.layers(function)
        ]

    def printed_argv(self) -> list[str]:
        """The vLLM argv the deploy printed (the ``vllm argv`` line of the summary)."""
        match = re.search(r"^\s*vllm argv\s+(.+)$", self.result.stdout, re.MULTILINE)
        assert match, f"no 'vllm argv' line in:\n{self.result.stdout}"
        return shlex.split(match.group(1))


def _deploy(stub: ModalStub, home: Path, env: Mapping[str, str]) -> Deployed:
    stub.clear()
    result = run_modal(stub, ["deploy", "-m", APP_MODULE], home, env)
    functions = {r.function.function_name: r.function for r in stub.requests("FunctionCreate")}
    with stub.state.lock:  # layers and mounts by id, as the definitions refer to them
        images = dict(stub.state.images)
        mounts = dict(stub.state.mounts)
    return Deployed(result, functions, images, mounts, stub.methods())


def _ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr


# ---- the configs rehearsed --------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """A config to deploy (as GPTOSS_* variables) and the literal values it must produce."""

    env: dict[str, str]
    gpu_type: str
    gpu_count: int
    auth: str
    vllm_version: VllmVersion
    model: str
    port: int = 8000
    min_containers: int = 0
    max_containers: int | None = None
    scaledown_s: int = 600
    timeout_s: int = 1800
    startup_timeout_s: int = 1800


CASES = {
    "20b-B200:1-api_key-default": Case({}, "B200", 1, "api_key", "0.33.0", "openai/gpt-oss-20b"),
    "20b-B200:1-api_key-seed": Case(
        {"GPTOSS_PROFILE": "seed"}, "B200", 1, "api_key", "0.13.0", "openai/gpt-oss-20b"
    ),
    "120b-H200:1-proxy-0.13.0": Case(
        {
            "GPTOSS_MODEL": "120b",
            "GPTOSS_GPU": "H200:1",
            "GPTOSS_AUTH": "proxy",
            "GPTOSS_VLLM_VERSION": "0.13.0",
            "GPTOSS_MAX_CONTAINERS": "2",
            "GPTOSS_SCALEDOWN_WINDOW_S": "120",
        },
        "H200",
        1,
        "proxy",
        "0.13.0",
        "openai/gpt-oss-120b",
        max_containers=2,
        scaledown_s=120,
    ),
    "20b-H100:2-none-0.33.0": Case(
        {
            "GPTOSS_GPU": "H100:2",
            "GPTOSS_AUTH": "none",
            "GPTOSS_PORT": "8080",
            "GPTOSS_MIN_CONTAINERS": "1",
            "GPTOSS_MAX_CONTAINERS": "3",
            "GPTOSS_TIMEOUT_S": "900",
            "GPTOSS_STARTUP_TIMEOUT_S": "1200",
        },
        "H100",
        2,
        "none",
        "0.33.0",
        "openai/gpt-oss-20b",
        port=8080,
        min_containers=1,
        max_containers=3,
        timeout_s=900,
        startup_timeout_s=1200,
    ),
}
PREFLIGHT_OFF = {"GPTOSS_PREFLIGHT": "off"}  # the Hub check has its own tests; this is Modal


@dataclass
class Rehearsal:
    """One case deployed: the case, the Deployment it resolves to, and what was sent."""

    case: Case
    env: dict[str, str]
    deployment: Deployment
    deployed: Deployed


Rehearse = Callable[[str], Rehearsal]


@pytest.fixture(scope="module")
def rehearse(stub: ModalStub, home: Path) -> Rehearse:
    """Deploy a case on first use (once per module) and keep what the stub recorded."""
    done: dict[str, Rehearsal] = {}

    def rehearse(name: str) -> Rehearsal:
        if name not in done:
            case = CASES[name]
            env = {**case.env, **PREFLIGHT_OFF}
            deployed = _deploy(stub, home, env)
            _ok(deployed.result)
            done[name] = Rehearsal(case, env, load_deployment(env=env), deployed)
        return done[name]

    return rehearse


each_case = pytest.mark.parametrize("name", list(CASES))


# ---- modal deploy: the function definitions ----------------------------------------------


@each_case
def test_deploy_creates_and_publishes_both_functions(rehearse: Rehearse, name: str) -> None:
    """`modal deploy` exits 0 after creating `serve` and `download` and publishing the app."""
    deployed = rehearse(name).deployed
    assert set(deployed.functions) == {"serve", "download"}
    (publish,) = [r for r in deployed.methods if r == "AppPublish"]
    assert publish
    assert "App deployed" in deployed.result.stdout


@each_case
def test_serve_runs_on_the_configured_gpu_and_scales_as_configured(
    rehearse: Rehearse, name: str
) -> None:
    """The serve function's GPU, timeouts, scaling and concurrency are the config's."""
    r = rehearse(name)
    case, serve = r.case, r.deployed.functions["serve"]
    assert serve.resources.gpu_config.gpu_type == case.gpu_type
    assert serve.resources.gpu_config.count == case.gpu_count
    assert serve.timeout_secs == case.timeout_s
    assert serve.startup_timeout_secs == case.startup_timeout_s
    autoscaler = serve.autoscaler_settings
    assert autoscaler.scaledown_window == case.scaledown_s
    assert autoscaler.min_containers == case.min_containers
    if case.max_containers is None:
        assert not autoscaler.HasField("max_containers")
    else:
        assert autoscaler.max_containers == case.max_containers
    assert serve.max_concurrent_inputs == r.deployment.max_inputs > 0


@each_case
def test_serve_is_a_web_server_on_vllms_port_with_the_auth_mode(
    rehearse: Rehearse, name: str
) -> None:
    """Modal routes to vLLM's port, waits the start-up timeout, and checks proxy auth only in
    `proxy` mode."""
    r = rehearse(name)
    case, hook = r.case, r.deployed.functions["serve"].webhook_config
    assert hook.type == api_pb2.WEBHOOK_TYPE_WEB_SERVER
    assert hook.web_server_port == case.port == r.deployment.serve.port
    assert hook.web_server_startup_timeout == case.startup_timeout_s
    assert hook.requires_proxy_auth is (case.auth == "proxy")
    (url_line,) = [line for line in r.deployed.result.stdout.splitlines() if WEB_URL_SUFFIX in line]
    assert ("🔑" in url_line) is (case.auth == "proxy")  # the CLI's mark for proxy auth


@each_case
def test_the_api_key_secret_is_attached_only_in_api_key_mode(
    rehearse: Rehearse, name: str, stub: ModalStub
) -> None:
    """`serve` carries the API-key Secret, looked up with its required key, only with `api_key`;
    `download` never does."""
    r = rehearse(name)
    want = [f"st-{SECRET_NAME}"] if r.case.auth == "api_key" else []
    assert list(r.deployed.functions["serve"].secret_ids) == want
    assert list(r.deployed.functions["download"].secret_ids) == []


@each_case
def test_the_three_cache_volumes_are_mounted_at_their_paths(rehearse: Rehearse, name: str) -> None:
    """`serve` mounts the three cache Volumes at their paths; `download` only the Hub cache."""
    functions = rehearse(name).deployed.functions
    mounted = {m.mount_path: m.volume_id for m in functions["serve"].volume_mounts}
    assert mounted == {path: f"vo-{volume}" for path, volume in CACHE_VOLUMES.items()}
    downloads = {m.mount_path: m.volume_id for m in functions["download"].volume_mounts}
    assert downloads == {HF_CACHE: f"vo-{CACHE_VOLUMES[HF_CACHE]}"}
    assert functions["download"].timeout_secs == 60 * 60
    assert not functions["download"].resources.gpu_config.count  # a CPU container


# ---- modal deploy: the image ---------------------------------------------------------------


def _env_layer(commands: list[str]) -> dict[str, str]:
    """``ENV NAME=value`` commands (values shell-quoted, as Modal writes them) as a dict."""
    env = {}
    for command in commands:
        assert command.startswith("ENV "), command
        key, _, quoted = command.removeprefix("ENV ").partition("=")
        (env[key],) = shlex.split(quoted)
    return env


@each_case
def test_image_layers_hold_the_pinned_stack_in_order(rehearse: Rehearse, name: str) -> None:
    """Base image, Python, the version's pinned packages, the checked vocabularies, then the
    environment: one layer each, in that order, shared by both functions."""
    r = rehearse(name)
    assert r.deployment.serve.version == r.case.vllm_version
    pins = IMAGES[r.case.vllm_version]
    d = r.deployed
    assert d.functions["serve"].image_id == d.functions["download"].image_id
    base, entrypoint, packages, vocabulary, environment = d.commands("serve")
    assert base[0] == f"FROM {pins.base_image}"
    python = d.mounts[d.layers("serve")[0].context_mount_id]
    assert python.deployment_name.startswith("python-build-standalone.")
    assert f".{pins.python_version}." in python.deployment_name
    assert entrypoint == ["ENTRYPOINT []"]
    (install,) = [c for c in packages if "uv pip install" in c]
    assert sorted(shlex.split(install)[-len(pins.packages) :]) == sorted(pins.packages)
    assert vocabulary[0] == f"RUN mkdir -p {TIKTOKEN_DIR}"
    for (file, sha256), command in zip(TIKTOKEN_VOCABULARIES, vocabulary[1:], strict=True):
        argv = shlex.split(command.removeprefix("RUN "))
        assert argv[-3:-1] == [TIKTOKEN_BASE_URL + file, sha256]
        assert argv[-1] == f"{TIKTOKEN_DIR}/{file}"
    env = _env_layer(environment)
    assert env[DEPLOYMENT_ENV] == r.deployment.to_json()
    assert {k: v for k, v in env.items() if k.startswith("VLLM_")} == r.deployment.vllm_env
    assert env["TIKTOKEN_ENCODINGS_BASE"] == TIKTOKEN_DIR
    assert {k: env[k] for k in pins.env} == dict(pins.env)


@each_case
def test_package_source_comes_as_a_mount_not_a_layer(rehearse: Rehearse, name: str) -> None:
    """The package reaches both functions as a mount of its source (no layer holds it), so
    editing it rebuilds nothing."""
    d = rehearse(name).deployed
    for function in ("serve", "download"):
        sources = [d.mounts[i] for i in d.functions[function].mount_ids if d.mounts[i].files]
        (package,) = sources
        files = {f.filename for f in package.files}
        assert all(path.startswith(PACKAGE_ROOT) for path in files)
        assert f"{PACKAGE_ROOT}app.py" in files
        assert f"{PACKAGE_ROOT}deploy/settings.py" in files
    for commands in d.commands("serve"):
        assert not any("gptoss_modal" in c and not c.startswith("ENV ") for c in commands)


def test_a_config_change_rebuilds_only_the_environment_layer(rehearse: Rehearse) -> None:
    """Two configs on one vLLM version share every layer but the last (the environment)."""
    a = rehearse("20b-B200:1-api_key-default").deployed.commands("serve")
    b = rehearse("20b-H100:2-none-0.33.0").deployed.commands("serve")
    assert a[:-1] == b[:-1]
    assert a[-1] != b[-1]


# ---- the container side ------------------------------------------------------------------

# Import the app as a Modal container does (``modal.is_local()`` false) from the package
# source the deploy uploaded, with only the image's environment, and print what it would start
# vLLM with: every case in one interpreter (a Python start and `import modal` each cost about a
# second of CPU). Each case gets a fresh import of everything past `modal` (so nothing one
# case's environment set at import survives into the next), its own environment and its own
# upload first on sys.path. argv[1] is the run's bytecode cache for modal and its dependencies,
# set here, not as a variable, so the environment stays the image's alone; the uploads are new
# files each run, so their bytecode is not written.
_CONTAINER_SCRIPT = """
import importlib, json, os, sys, traceback
sys.pycache_prefix = sys.argv[1] or None
cases = json.load(sys.stdin)
os.environ.clear()
os.environ.update(cases[0]["env"])
import modal
modal.is_local = lambda: False
sys.dont_write_bytecode = True
baseline = set(sys.modules)
for case in cases:
    os.environ.clear()
    os.environ.update(case["env"])
    for module in set(sys.modules) - baseline:
        del sys.modules[module]
    sys.path.insert(0, case["root"])
    importlib.invalidate_caches()
    try:
        import gptoss_modal.app as app
        d = app.DEPLOYMENT
        out = {"file": app.__file__, "argv": d.argv, "env": d.vllm_env}
    except BaseException:
        out = {"error": traceback.format_exc()}
    sys.path.remove(case["root"])
    print(json.dumps(out))
"""


def _unpack_package(stub: ModalStub, mount: api_pb2.MountGetOrCreateRequest, root: Path) -> None:
    """Write the uploaded package source under ``root`` as the container sees it (/root/...)."""
    with stub.state.lock:
        contents = dict(stub.state.mount_files)
    for entry in mount.files:
        path = root / entry.filename.removeprefix("/root/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(contents[entry.sha256_hex])


@dataclass
class Container:
    """One case's app imported container-side: where from, and what it printed."""

    root: Path  # the case's unpacked upload (its /root)
    result: subprocess.CompletedProcess[str]  # the one interpreter all cases ran in
    printed: dict[str, Any]  # file, argv and env; or the import's traceback as error


@pytest.fixture(scope="module")
def containers(
    rehearse: Rehearse, stub: ModalStub, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Container]:
    """Every case deployed, its upload unpacked, and its app imported container-side."""
    roots: dict[str, Path] = {}
    envs: list[dict[str, str]] = []
    for name in CASES:
        d = rehearse(name).deployed
        image_env = _env_layer(d.commands("serve")[-1])
        (package,) = [d.mounts[i] for i in d.functions["serve"].mount_ids if d.mounts[i].files]
        root = roots[name] = tmp_path_factory.mktemp("container")
        _unpack_package(stub, package, root)
        envs.append(
            {**image_env, "HOME": str(root), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)}
        )
    cases = [{"root": str(roots[name]), "env": env} for name, env in zip(CASES, envs, strict=True)]
    result = subprocess.run(
        [sys.executable, "-c", _CONTAINER_SCRIPT, os.environ.get("PYTHONPYCACHEPREFIX", "")],
        input=json.dumps(cases),
        env=envs[0],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    lines = result.stdout.strip().splitlines()[-len(CASES) :]
    printed = [json.loads(line) for line in lines] if result.returncode == 0 else [{}] * len(CASES)
    return {
        name: Container(roots[name], result, out) for name, out in zip(CASES, printed, strict=True)
    }


@each_case
def test_the_container_rebuilds_the_argv_printed_at_deploy_time(
    rehearse: Rehearse, name: str, containers: dict[str, Container]
) -> None:
    """The uploaded source, run with the deployment JSON the image carries, starts vLLM with
    exactly the argv (and variables) the deploy printed."""
    r = rehearse(name)
    c = containers[name]
    _ok(c.result)
    container = c.printed
    assert "error" not in container, container["error"]
    assert Path(container["file"]).is_relative_to(c.root)  # the uploaded copy, not ours
    printed = r.deployed.printed_argv()
    assert container["argv"] == printed == r.deployment.argv
    assert container["env"] == r.deployment.vllm_env
    assert f"--port {r.case.port}" in shlex.join(printed)
    assert printed[2] == r.case.model


# ---- failures and the other commands -------------------------------------------------------


@pytest.mark.parametrize("keys", [None, {"OTHER_KEY": "x"}], ids=["missing", "without-key"])
def test_deploy_without_the_api_key_secret_fails_with_our_message(
    stub: ModalStub, home: Path, keys: dict[str, str] | None
) -> None:
    """A missing API-key Secret, or one without VLLM_API_KEY, stops `modal deploy` (preflight
    strict) with our message, before anything is published."""
    stub.set_secret(SECRET_NAME, keys)
    try:
        stub.clear()
        result = run_modal(stub, ["deploy", "-m", APP_MODULE], home, {"GPTOSS_PREFLIGHT": "strict"})
    finally:
        stub.set_secret(SECRET_NAME, {API_KEY_ENV: "rehearsal-key"})
    out = result.stdout + result.stderr
    assert result.returncode != 0, out
    # Modal's CLI shows any exception raised while importing the app with its traceback; the
    # last thing it prints is our error, naming the field.
    assert f"ConfigError: secret_name={SECRET_NAME!r}" in result.stderr, out
    for line in missing_secret_message(DeploySettings()).splitlines():
        assert line in out, out
    (lookup,) = stub.requests("SecretGetOrCreate")
    assert lookup.deployment_name == SECRET_NAME
    assert list(lookup.required_keys) == [API_KEY_ENV]
    assert "AppCreate" not in stub.methods()
    assert "AppPublish" not in stub.methods()


def test_modal_run_download_calls_the_download_function(stub: ModalStub, home: Path) -> None:
    """`modal run -m gptoss_modal.app::download` runs an ephemeral app, calls `download` once
    (the stub answers for the container that would run it), and disconnects."""
    stub.clear()
    result = run_modal(stub, ["run", "-m", f"{APP_MODULE}::download"], home, PREFLIGHT_OFF)
    _ok(result)
    (create,) = stub.requests("AppCreate")
    assert create.app_state == api_pb2.APP_STATE_EPHEMERAL
    (call,) = stub.requests("FunctionMap")
    with stub.state.lock:
        called = stub.state.functions[call.function_id]
    assert called.function_name == "download"
    assert "AppClientDisconnect" in stub.methods()
    (publish,) = stub.requests("AppPublish")  # published for the run only, never deployed
    assert publish.app_state == api_pb2.APP_STATE_EPHEMERAL


def test_modal_app_stop_stops_the_deployed_app(
    rehearse: Rehearse, stub: ModalStub, home: Path
) -> None:
    """`modal app stop` stops the app `modal deploy` published, by its id."""
    # The default config's deploy (the module's, done once; the stub keeps the app it
    # published) is the deploy to stop: a deploy of its own would cost a CLI run.
    rehearse("20b-B200:1-api_key-default")
    app_id = stub.deployed_app_id(DeploySettings().app_name)
    assert app_id
    stub.clear()
    result = run_modal(stub, ["app", "stop", DeploySettings().app_name, "--yes"], home)
    _ok(result)
    (stop,) = stub.requests("AppStop")
    assert stop.app_id == app_id
    assert stub.deployed_app_id(DeploySettings().app_name) is None


# ---- snapshot start mode (enabled once the app has it) -------------------------------------

_HAS_SNAPSHOT_MODE = "cold_start" in {f.name for f in dataclasses.fields(DeploySettings)} and (
    "enable_memory_snapshot" in APP_SOURCE.read_text()
)


@pytest.mark.skipif(not _HAS_SNAPSHOT_MODE, reason="the app has no GPU-snapshot start mode yet")
def test_snapshot_mode_deploys_a_class_with_memory_and_gpu_snapshots(
    stub: ModalStub, home: Path
) -> None:
    """With GPTOSS_COLD_START=snapshot the server is a Modal class with memory and GPU
    snapshots enabled, on the same GPU, port and Volumes."""
    deployed = _deploy(stub, home, {"GPTOSS_COLD_START": "snapshot", **PREFLIGHT_OFF})
    _ok(deployed.result)
    assert stub.requests("ClassCreate"), deployed.methods
    snapshotted = [f for f in deployed.functions.values() if f.checkpointing_enabled]
    assert snapshotted, list(deployed.functions)
    (server,) = snapshotted
    assert server.experimental_options.get("enable_gpu_snapshot", "").lower() == "true"
    assert server.resources.gpu_config.gpu_type == "B200"
    mounted = {m.mount_path for m in server.volume_mounts}
    assert mounted == set(CACHE_PATHS)
    web = [m for m in server.method_definitions.values() if m.webhook_config.type] or [server]
    assert any(m.webhook_config.web_server_port == 8000 for m in web)


# ---- the stub itself ----------------------------------------------------------------------


def test_the_stub_serves_every_method_modal_proto_declares() -> None:
    """The method table is modal_proto's own, so a method a new SDK calls is answered."""
    declared = set(api_grpc.ModalClientBase.__abstractmethods__)
    assert set(method_names()) == declared
    assert {"AppCreate", "FunctionCreate", "ImageGetOrCreate"} <= declared


async def test_an_unimplemented_method_fails_at_once_naming_itself(stub: ModalStub) -> None:
    """A method the stub does not implement answers UNIMPLEMENTED with its name (no hang), and
    the request is still recorded."""
    host, port = stub.url.removeprefix("http://").split(":")
    channel = Channel(host, int(port))
    try:
        client = api_grpc.ModalClientStub(channel)
        with pytest.raises(GRPCError) as raised:
            await client.SandboxCreate(api_pb2.SandboxCreateRequest(app_id="ap-x"), timeout=10)
    finally:
        channel.close()
    assert raised.value.status == Status.UNIMPLEMENTED
    assert "SandboxCreate" in str(raised.value.message)
    assert stub.requests("SandboxCreate")[-1].app_id == "ap-x"


async def test_blobs_round_trip_through_the_sdks_own_upload_and_download(stub: ModalStub) -> None:
    """A payload too large to inline goes up and comes back through Modal's own blob code:
    BlobCreate, an HTTP PUT with its MD5 check, BlobGet, an HTTP GET."""
    from modal._utils.blob_utils import MAX_OBJECT_SIZE_BYTES, blob_download, blob_upload

    payload = bytes(range(256)) * (MAX_OBJECT_SIZE_BYTES // 256 + 1)  # just over the limit
    host, port = stub.url.removeprefix("http://").split(":")
    channel = Channel(host, int(port))
    try:
        client: Any = api_grpc.ModalClientStub(channel)
        blob_id = await blob_upload(payload, client)
        assert await blob_download(blob_id, client) == payload
    finally:
        channel.close()
    (create,) = [r for r in stub.requests("BlobCreate") if r.content_length == len(payload)]
    assert create.content_md5  # the client sent the checksum the PUT is checked against
