# # Serve OpenAI's gpt-oss with vLLM on Modal: tuned, configurable, and locked by default
#
# `modal deploy -m gptoss_modal.app` puts gpt-oss behind an OpenAI-compatible URL:
# vLLM 0.13.0 with an EAGLE3 speculator, an fp8 KV cache, torch.compile and CUDA graphs on a
# B200 by default. This file only *wires* things together. Every vLLM flag and variable comes
# from the command builder (`gptoss_modal.serve.command`) for a typed, validated `ServeConfig`;
# every deployment choice (auth, names, scaling, timeouts) from `gptoss_modal.deploy`.
#
# Configure it with a TOML file (`GPTOSS_CONFIG=gptoss.toml`, tables `[serve]` and `[deploy]`)
# or `GPTOSS_*` environment variables, e.g. `GPTOSS_MODEL=120b GPTOSS_GPU=H200:1`. See
# `docs/modal-app.md` for deploying, calling, rotating the key and what a cold start costs.
"""The Modal app that serves gpt-oss with vLLM (``modal deploy -m gptoss_modal.app``)."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import modal

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.deploy import (
    API_KEY_ENV,
    DEPLOYMENT_ENV,
    Deployment,
    describe,
    hub_repos,
    image_recipe,
    load_deployment,
    missing_api_key_message,
    missing_secret_message,
    open_auth_banner,
)

if TYPE_CHECKING:
    from gptoss_modal.stream.client import Client, HealthProgress

MINUTES = 60  # seconds

# ## One config, resolved once, on the deploying machine
#
# On your machine (`modal deploy`, `modal run`) the config is read from defaults, the TOML file
# and the environment, resolved to explicit values and printed. Its JSON is baked into the
# image's environment; inside the container this module is imported again and reads that JSON
# back instead of looking at its own environment. So the container runs exactly what was
# deployed, and `@modal.concurrent` and the GPU below agree with vLLM's flags.


def _load_deployment() -> Deployment:
    if modal.is_local():
        return load_deployment()
    text = os.environ.get(DEPLOYMENT_ENV)
    if not text:
        raise ConfigError(
            DEPLOYMENT_ENV, None, "the deployment JSON the image carries: redeploy the app"
        )
    return Deployment.from_json(text)


DEPLOYMENT = _load_deployment()
CONFIG = DEPLOYMENT.serve  # how vLLM runs (resolved ServeConfig)
SETTINGS = DEPLOYMENT.settings  # how Modal runs it (DeploySettings)

# ## The container image
#
# NVIDIA's CUDA 12.8 *devel* image (FlashInfer compiles kernels with nvcc at first start) with
# Python 3.12, then vLLM and the Hub client at pinned versions. The harmony tokenizer of gpt-oss
# downloads its vocabulary at start-up unless it finds it on disk, so the vocabulary files are
# baked in, checked against their SHA-256. Then the environment: vLLM's GPU-specific variables
# from the builder, and the deployment's JSON (the only layer that changes with the config).
# Our package is added as local source last, so editing it does not rebuild anything.

RECIPE = image_recipe(DEPLOYMENT)

image = (
    modal.Image.from_registry(RECIPE.base_image, add_python=RECIPE.python_version)
    .entrypoint([])  # the CUDA image's entrypoint prints a banner we do not need
    .uv_pip_install(*RECIPE.packages)
    .run_commands(*RECIPE.build_commands)
    .env(RECIPE.env)
    .add_local_python_source(RECIPE.local_package)
)

# ## Caches that outlive containers
#
# Three Volumes keep what a start would otherwise redo: the weights (Hugging Face cache),
# vLLM's torch.compile artifacts and FlashInfer's JIT-compiled kernels. The first start on a
# GPU type fills them; later starts read them.

HF_CACHE_PATH = "/root/.cache/huggingface"
VLLM_CACHE_PATH = "/root/.cache/vllm"
FLASHINFER_CACHE_PATH = "/root/.cache/flashinfer"

hf_cache_volume = modal.Volume.from_name("huggingface-cache", create_if_missing=True)
vllm_cache_volume = modal.Volume.from_name("vllm-cache", create_if_missing=True)
flashinfer_cache_volume = modal.Volume.from_name("flashinfer-cache", create_if_missing=True)

VOLUMES: dict[str | PurePosixPath, modal.Volume | modal.CloudBucketMount] = {
    HF_CACHE_PATH: hf_cache_volume,
    VLLM_CACHE_PATH: vllm_cache_volume,
    FLASHINFER_CACHE_PATH: flashinfer_cache_volume,
}

# ## Secure by default
#
# With `auth = "api_key"` (the default) vLLM refuses `/v1/*` requests without
# `Authorization: Bearer <key>`. The key lives in a Modal Secret and reaches vLLM as the
# `VLLM_API_KEY` environment variable, so it is never on vLLM's argv, in `ps`, or in what this
# module prints. With `auth = "proxy"` Modal's proxy checks `Modal-Key`/`Modal-Secret` headers
# before a request can wake a GPU. `auth = "none"` serves anyone, and says so loudly.

API_KEY_SECRETS = (
    [modal.Secret.from_name(SETTINGS.secret_name, required_keys=[API_KEY_ENV])]
    if SETTINGS.auth == "api_key"
    else []
)
HF_SECRETS = (
    [modal.Secret.from_name(SETTINGS.hf_secret_name, required_keys=["HF_TOKEN"])]
    if SETTINGS.hf_secret_name
    else []
)

# ## Checked and printed before anything is deployed
#
# On the deploying machine, print what will run (the API key is not among it: this machine
# never holds it), then check that the Hub has the model at its pinned revision and the
# speculator, and that the API-key Secret exists, so a typo fails in seconds instead of after a
# cold start. `GPTOSS_PREFLIGHT=warn` only reports; `off` skips the network checks.


def _preflight(deployment: Deployment) -> None:
    settings = deployment.settings
    from gptoss_modal.deploy.preflight import run_preflight  # the Hub client is only needed here

    report = run_preflight(deployment.serve, container_has_token=bool(settings.hf_secret_name))
    print(report.summary())
    if settings.preflight == "strict":
        report.raise_for_failures()
    if settings.auth == "api_key":
        _check_api_key_secret(deployment)


def _check_api_key_secret(deployment: Deployment) -> None:
    settings = deployment.settings
    try:  # a lookup of its own, so the Secret object the function uses stays untouched
        modal.Secret.from_name(settings.secret_name, required_keys=[API_KEY_ENV]).hydrate()
    except modal.exception.NotFoundError:
        if settings.preflight == "strict":
            raise ConfigError(
                "secret_name", settings.secret_name, missing_secret_message(settings)
            ) from None
        print(f"warning: {missing_secret_message(settings)}", file=sys.stderr)
    # Without credentials or network the SDK raises auth, gRPC or OS errors alike; this check
    # is advisory (Modal checks the Secret again at deploy), so none of them may stop the deploy.
    except Exception as exc:  # noqa: BLE001  (an advisory check: report any failure and go on)
        print(
            f"warning: could not check the Modal Secret {settings.secret_name!r} "
            f"({type(exc).__name__}); Modal checks it again when deploying",
            file=sys.stderr,
        )


if modal.is_local():
    print(describe(DEPLOYMENT))
    if SETTINGS.auth == "none":
        print(open_auth_banner(DEPLOYMENT), file=sys.stderr)
    if SETTINGS.preflight != "off":
        _preflight(DEPLOYMENT)

# ## The app and its vLLM server
#
# One web server per container, on the GPU from the config (a multi-GPU spec such as `H100:2`
# means tensor parallelism over both). `@modal.concurrent` lets each container take as many
# requests at once as vLLM has CUDA graphs captured for (`max_inputs`, tied to the capture size
# by the config); Modal adds containers beyond that, up to `max_containers`. The start-up
# timeout covers a first start that compiles FlashInfer's kernels (10-15 minutes on a B200).

app = modal.App(SETTINGS.app_name, include_source=False)  # the package comes with the image

VLLM_STARTUP_MARGIN_S = 30  # our start-up wait gives up this much before Modal's does


def _container_api_key() -> str:
    """The key vLLM reads from its environment; refuse to start open by accident."""
    api_key = os.environ.get(API_KEY_ENV, "")
    if SETTINGS.auth == "api_key" and not api_key.strip():
        raise ConfigError(API_KEY_ENV, "<empty>", missing_api_key_message(SETTINGS))
    if SETTINGS.auth == "none":
        print(open_auth_banner(DEPLOYMENT), file=sys.stderr)
    return api_key


# What every serving container gets, whichever way it starts: the image, the GPU, the cache
# Volumes, the Secrets, scaling and timeouts (seconds, from the deploy settings).
CONTAINER: dict[str, Any] = {
    "image": image,
    "gpu": CONFIG.gpu,
    "volumes": VOLUMES,
    "secrets": [*API_KEY_SECRETS, *HF_SECRETS],
    "min_containers": SETTINGS.min_containers,
    "max_containers": SETTINGS.max_containers,
    "scaledown_window": SETTINGS.scaledown_window_s,
    "timeout": SETTINGS.timeout_s,
    "startup_timeout": SETTINGS.startup_timeout_s,
}

if SETTINGS.cold_start == "plain":

    @app.function(**CONTAINER)
    @modal.concurrent(max_inputs=DEPLOYMENT.max_inputs)
    @modal.web_server(
        port=CONFIG.port,
        startup_timeout=SETTINGS.startup_timeout_s,
        requires_proxy_auth=SETTINGS.auth == "proxy",
    )
    def serve() -> None:
        """Start vLLM with the builder's argv (no shell); return once its port is open.

        If vLLM exits while starting, raise at once with its last log lines instead of letting
        Modal wait out the start-up timeout; if it exits later, stop the container.
        """
        from gptoss_modal.deploy.launch import start_server

        api_key = _container_api_key()
        argv = DEPLOYMENT.argv
        print(f"starting vLLM: {shlex.join(argv)}", flush=True)
        server = start_server(
            argv,
            host=_probe_host(CONFIG.host),
            port=CONFIG.port,
            env=DEPLOYMENT.vllm_env,
            secrets=[api_key, os.environ.get("HF_TOKEN")],
            startup_timeout_s=max(1, SETTINGS.startup_timeout_s - VLLM_STARTUP_MARGIN_S),
        )
        server.watch(_stop_container)


# ## Opt-in: start from a GPU memory snapshot (`cold_start = "snapshot"`)
#
# Modal (alpha) can snapshot a container's CPU *and* GPU memory after its `snap=True` hooks and
# restore later containers from it, skipping the weights load, torch.compile and CUDA graph
# capture. Before the snapshot, vLLM starts with sleep mode and its dev endpoints, answers one
# warm-up, the vLLM cache Volume is committed, and the engine sleeps (weights to CPU), so no live
# engine is frozen. After each restore the Volumes are reloaded, the engine wakes, and a
# short deterministic canary must come back well-formed; if not, the container says so loudly
# and exits with Modal's sentinel code, and Modal starts it again without the snapshot.
# The dev endpoints are on the served port, so a middleware refuses them to any request without
# this container's random token (`gptoss_modal.deploy.dev_guard`).

else:

    @app.cls(
        **CONTAINER,
        enable_memory_snapshot=True,
        experimental_options={"enable_gpu_snapshot": True},
    )
    @modal.concurrent(max_inputs=DEPLOYMENT.max_inputs)
    class Server:
        """vLLM started, warmed up and put to sleep before the snapshot; woken after restore."""

        @modal.enter(snap=True)
        async def start_and_sleep(self) -> None:
            """Start vLLM (sleep mode, dev endpoints), warm it up, commit the cache, sleep."""
            from gptoss_modal.deploy.dev_guard import DEV_TOKEN_ENV, DEV_TOKEN_HEADER, new_dev_token
            from gptoss_modal.deploy.launch import start_server
            from gptoss_modal.deploy.snapshot import before_snapshot
            from gptoss_modal.serve.sleep import sleep_mode

            api_key = _container_api_key()
            self.dev_token = new_dev_token()
            self.dev_headers = {DEV_TOKEN_HEADER: self.dev_token}
            argv = DEPLOYMENT.snapshot_argv
            env = {**DEPLOYMENT.snapshot_env, DEV_TOKEN_ENV: self.dev_token}
            path = [_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")]
            env["PYTHONPATH"] = os.pathsep.join(p for p in path if p)
            print(f"starting vLLM for a snapshot: {shlex.join(argv)}", flush=True)
            self.secrets = [api_key, os.environ.get("HF_TOKEN"), self.dev_token]
            self.server = start_server(
                argv,
                host=_probe_host(CONFIG.host),
                port=CONFIG.port,
                env=env,
                secrets=self.secrets,
                startup_timeout_s=max(1, SETTINGS.startup_timeout_s - VLLM_STARTUP_MARGIN_S),
            )
            async with self._client(api_key) as client:
                await before_snapshot(
                    client,
                    self.server,
                    dev_headers=self.dev_headers,
                    sleep_params=sleep_mode(CONFIG.vllm_version).sleep_params,
                    commit_volumes=_commit_caches,
                )

        @modal.enter(snap=False)
        async def wake(self) -> None:
            """Reload the caches, wake vLLM, check its output; exit (Modal retries) if wrong."""
            from gptoss_modal.deploy.snapshot import after_restore, restore_or_exit

            async with self._client(os.environ.get(API_KEY_ENV, "")) as client:
                restore = after_restore(
                    client, self.server, dev_headers=self.dev_headers, reload_volumes=_reload_caches
                )
                await restore_or_exit(restore, exit=os._exit)
            self.server.watch(_stop_container)

        def _client(self, api_key: str) -> Client:
            from gptoss_modal.stream.client import Client

            url = f"http://{_probe_host(CONFIG.host)}:{CONFIG.port}"
            return Client(url, api_key=api_key or None, model=CONFIG.model)

        @modal.web_server(
            port=CONFIG.port,
            startup_timeout=SETTINGS.startup_timeout_s,
            requires_proxy_auth=SETTINGS.auth == "proxy",
        )
        def serve(self) -> None:
            """vLLM already serves on the port (started and woken by the enter hooks)."""


# Where our package lives in the container: vLLM's process imports the dev guard from it.
_PACKAGE_ROOT = str(PurePosixPath(__file__).parent.parent)


def _commit_caches() -> None:
    """Before the snapshot: what vLLM compiled and tuned, kept for containers not restored."""
    vllm_cache_volume.commit()
    flashinfer_cache_volume.commit()


def _reload_caches() -> None:
    """After a restore: see what other containers committed since the snapshot."""
    for volume in (hf_cache_volume, vllm_cache_volume, flashinfer_cache_volume):
        volume.reload()


def _probe_host(bind_host: str) -> str:
    """Where to check that vLLM's port is open: loopback when it binds every interface."""
    return "127.0.0.1" if bind_host in ("0.0.0.0", "::", "[::]") else bind_host


def _stop_container(returncode: int, log_tail: list[str]) -> None:
    """vLLM died after it started serving: say why, then end the container so Modal replaces it
    (a container without its engine would only answer errors)."""
    lines = "\n".join(f"  | {line}" for line in log_tail)
    print(
        f"vLLM exited with code {returncode} while serving; last lines:\n{lines}",
        file=sys.stderr,
        flush=True,
    )
    os._exit(1)


async def _web_url() -> str | None:
    """The served URL: the function's in plain mode, the class's web method in snapshot mode."""
    if SETTINGS.cold_start == "plain":
        return await serve.get_web_url.aio()  # the blocking form warns inside a coroutine
    return await Server().serve.get_web_url.aio()


# ## Pre-download the weights
#
# `modal run -m gptoss_modal.app::download` fetches the model at its pinned revision and the
# speculator into the Hugging Face cache Volume, on a CPU container, so the first GPU start
# loads from the Volume instead of downloading ~13 GB (20b) or ~65 GB (120b) on the GPU's clock.


@app.function(
    image=image,
    volumes={HF_CACHE_PATH: hf_cache_volume},
    secrets=HF_SECRETS,
    timeout=60 * MINUTES,
)
def download() -> None:
    """Download every repo vLLM will load for the deployed config into the cache Volume."""
    from huggingface_hub import snapshot_download

    for repo in hub_repos(CONFIG):
        path = snapshot_download(
            repo.repo_id,
            revision=repo.revision,
            ignore_patterns=list(repo.ignore_patterns) or None,
        )
        print(f"{repo.role}: {repo.repo_id}@{repo.revision or 'default branch'} -> {path}")
    hf_cache_volume.commit()


# ## Try it: `modal run -m gptoss_modal.app`
#
# As in Modal's example, `modal run` starts the app for the length of this function: wait for the
# server to become healthy (showing progress through a cold start), then stream one answer with
# low reasoning effort and another with a pirate system prompt, through our streaming client and
# `gptoss-modal chat`'s display, and print time to first token, time to last token and tokens/s.
#
# Every parameter is annotated: Modal only turns annotated parameters into typed CLI options
# (an unannotated `bool` would arrive as a string, and `--twice False` would be truthy).

# 5xx answers in a row that mean "failing to start", not "still starting": Modal's proxy holds
# requests to a container that is still starting, so a cold start shows timeouts, not 5xx.
STARTUP_FAILURES_IN_A_ROW = 3
DEFAULT_PROMPT = "Explain what the Singular Value Decomposition is."
SYSTEM_PROMPT = "You are a helpful assistant. Answer concisely."
PIRATE = " Talk like a pirate, matey."


@app.local_entrypoint()
async def main(
    prompt: str = DEFAULT_PROMPT,  # the user message
    twice: bool = True,  # then send it again with a pirate system prompt
    reasoning_effort: str = "low",  # low, medium or high: how long gpt-oss thinks first
    max_tokens: int = 2048,  # upper bound on generated tokens (reasoning included)
    health_timeout_s: float = 30 * MINUTES,  # how long to wait for a cold start
) -> None:
    """Wait for the server, then stream a chat (twice: plain, then as a pirate).

    A vLLM that keeps failing to start (5xx through Modal's proxy, several times in a row) ends
    the wait at once with the last answer, instead of Modal restarting a GPU for half an hour.
    """
    from gptoss_modal.deploy import client_credentials
    from gptoss_modal.display import Spinner, format_summary, print_stream
    from gptoss_modal.stream.client import Client

    api_key, headers = client_credentials(SETTINGS, os.environ)
    url = await _web_url()
    if not url:
        raise ConfigError("url", url, "the web URL of the running serve function")
    async with Client(url, api_key=api_key, headers=headers, model=CONFIG.model) as client:
        print(f"waiting for {url}/health (a cold start can take minutes)", flush=True)
        spinner = Spinner(sys.stderr)

        def show(progress: HealthProgress) -> None:
            spinner.label = f"{progress.attempts} checks, last: {progress.last_status}"

        spinner.start("waiting for vLLM to start")
        try:
            health = await client.wait_healthy(
                timeout_s=health_timeout_s,
                on_progress=show,
                max_server_errors=STARTUP_FAILURES_IN_A_ROW,
            )
        finally:
            spinner.stop()
        print(f"healthy after {health.elapsed_s:.0f} s")
        systems = [SYSTEM_PROMPT, SYSTEM_PROMPT + PIRATE] if twice else [SYSTEM_PROMPT]
        for system in systems:
            print(f"\n>>> system: {system}\n>>> user: {prompt}\n", flush=True)
            stream = client.stream_chat(
                prompt, system=system, reasoning_effort=reasoning_effort, max_tokens=max_tokens
            )
            async with stream:
                result = await print_stream(stream, sys.stdout, sys.stderr)
            print(format_summary(result))
