"""How the Modal app is deployed: auth, names, scaling, timeouts, the image, and the bundle of
all of it that travels into the container.

Pure: no modal, no network. The Modal app (:mod:`gptoss_modal.app`) reads a :class:`Deployment`
on the deploying machine with :func:`load_deployment`, bakes its JSON into the image
environment (:data:`DEPLOYMENT_ENV`), and the container reads the same JSON back, so the
container runs exactly what was deployed.

Deploy settings load like the serve config, with one precedence: defaults < the TOML file's
``[deploy]`` table (``$GPTOSS_CONFIG``, the same file whose ``[serve]`` table holds the serve
config) < ``GPTOSS_*`` environment variables (``GPTOSS_AUTH``, ``GPTOSS_SECRET_NAME``, ...).

Auth modes:

- ``api_key`` (default): vLLM checks ``Authorization: Bearer <key>``; the key comes from the
  Modal Secret :attr:`DeploySettings.secret_name` as ``VLLM_API_KEY``, never from argv.
- ``proxy``: Modal's proxy auth (``Modal-Key``/``Modal-Secret`` headers), checked before a
  request can wake a GPU.
- ``none``: anyone who finds the URL can use it (and wake a GPU). It must be spelled out, and
  every deploy and container start says so loudly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gptoss_modal._exceptions import ConfigError
from gptoss_modal._loading import check_range, check_types, did_you_mean, env_values, toml_values
from gptoss_modal._vllm_options import VLLM_VERSION
from gptoss_modal.command import build_vllm_command, vllm_env
from gptoss_modal.config import CONFIG_PATH_ENV, ENV_PREFIX, ServeConfig, load_config

__all__ = [
    "API_KEY_ENV",
    "AUTH_MODES",
    "CLIENT_API_KEY_ENV",
    "DEPLOYMENT_ENV",
    "PINNED_PACKAGES",
    "AuthMode",
    "DeploySettings",
    "Deployment",
    "HubRepo",
    "ImageRecipe",
    "client_credentials",
    "describe",
    "hub_repos",
    "image_recipe",
    "load_deploy_settings",
    "load_deployment",
    "missing_api_key_message",
    "missing_secret_message",
    "open_auth_banner",
    "proxy_auth_headers",
]

MINUTES = 60  # seconds

AuthMode = Literal["api_key", "proxy", "none"]
PreflightMode = Literal["strict", "warn", "off"]
AUTH_MODES: tuple[AuthMode, ...] = ("api_key", "proxy", "none")
PREFLIGHT_MODES: tuple[PreflightMode, ...] = ("strict", "warn", "off")

# The variable vLLM 0.13.0 reads the key from (``args.api_key or envs.VLLM_API_KEY``): the key
# reaches vLLM through the environment, so it is never on argv, in ``ps`` or in logged args.
API_KEY_ENV = "VLLM_API_KEY"
# Where clients on your machine find their credentials (the contract suite reads the same key).
CLIENT_API_KEY_ENV = "GPTOSS_API_KEY"
PROXY_KEY_ENV = "GPTOSS_MODAL_KEY"  # a Modal proxy auth token's id (wk-...)
PROXY_SECRET_ENV = "GPTOSS_MODAL_SECRET"  # noqa: S105  (a variable's name, not a secret)
# The environment variable that carries the deployment's JSON into the container.
DEPLOYMENT_ENV = "GPTOSS_DEPLOYMENT_JSON"
DEPLOYMENT_FORMAT = 1  # bumped when the JSON's shape changes incompatibly

# Modal's limits: object names, scaledown window, function timeout.
_MODAL_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
SCALEDOWN_WINDOW_RANGE_S = (2, 3600)
TIMEOUT_RANGE_S = (10, 24 * 60 * MINUTES)
MAX_CONTAINERS_LIMIT = 1000


@dataclass(frozen=True)
class DeploySettings:
    """Everything about a deployment that is not how vLLM runs: validated when constructed."""

    app_name: str = "gptoss-modal"
    auth: AuthMode = "api_key"
    # The Modal Secret holding VLLM_API_KEY (auth = "api_key"): its name, not the key.
    secret_name: str = "gptoss-api-key"  # noqa: S105
    hf_secret_name: str | None = None  # Modal Secret holding HF_TOKEN, for private models
    min_containers: int = 0  # containers kept warm; each one is a GPU billed while idle
    max_containers: int | None = None  # None: Modal's own limit
    scaledown_window_s: int = 10 * MINUTES  # idle time before a container stops
    timeout_s: int = 30 * MINUTES  # longest a single request may run
    # Longest a container may take to open vLLM's port: a first start on a new GPU compiles
    # FlashInfer's kernels for 10-15 minutes.
    startup_timeout_s: int = 30 * MINUTES
    preflight: PreflightMode = "strict"  # Hub and Secret checks before deploying

    def __post_init__(self) -> None:
        self._check_modes()  # first: their messages say more than "one of ..."
        check_types(self)
        for name in ("app_name", "secret_name", "hf_secret_name"):
            value = getattr(self, name)
            if value is not None and not _MODAL_NAME.match(value):
                raise ConfigError(
                    name, value, "a Modal name: 1-64 letters, digits, '.', '-' or '_'"
                )
        if self.max_containers is not None and not 1 <= self.max_containers <= MAX_CONTAINERS_LIMIT:
            raise ConfigError(
                "max_containers", self.max_containers, f"1 to {MAX_CONTAINERS_LIMIT}, or none"
            )
        upper = self.max_containers if self.max_containers is not None else MAX_CONTAINERS_LIMIT
        if not 0 <= self.min_containers <= upper:
            raise ConfigError(
                "min_containers", self.min_containers, f"0 to {upper} (at most max_containers)"
            )
        check_range("scaledown_window_s", self.scaledown_window_s, *SCALEDOWN_WINDOW_RANGE_S)
        check_range("timeout_s", self.timeout_s, *TIMEOUT_RANGE_S)
        check_range("startup_timeout_s", self.startup_timeout_s, *TIMEOUT_RANGE_S)

    def _check_modes(self) -> None:
        if self.auth not in AUTH_MODES:
            raise ConfigError(
                "auth",
                self.auth,
                "one of 'api_key' (a key from a Modal Secret), 'proxy' (Modal proxy auth) or "
                "'none' (open to anyone: it must be spelled out)",
            )
        if self.preflight not in PREFLIGHT_MODES:
            raise ConfigError("preflight", self.preflight, f"one of {', '.join(PREFLIGHT_MODES)}")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "dict") -> DeploySettings:
        """Build from a mapping of field names; unknown keys are errors, not ignored."""
        for key in data:
            if key not in _HINTS:
                raise ConfigError(
                    key, data[key], f"a [deploy] setting{did_you_mean(key, _HINTS)}", source=source
                )
        try:
            return cls(**data)
        except ConfigError as exc:
            exc.source = exc.source or source
            raise


_HINTS: dict[str, Any] = typing.get_type_hints(DeploySettings)


@dataclass(frozen=True)
class Deployment:
    """A resolved serve config and the deploy settings: everything the container needs.

    ``serve`` is stored resolved (fully explicit), so the JSON the container reads does not
    depend on the presets of the package version inside the container.
    """

    serve: ServeConfig
    settings: DeploySettings

    def __post_init__(self) -> None:
        object.__setattr__(self, "serve", self.serve.resolved())

    @property
    def argv(self) -> list[str]:
        """The ``vllm serve`` argv the container runs (from the command builder)."""
        return build_vllm_command(self.serve)

    @property
    def vllm_env(self) -> dict[str, str]:
        """The environment vLLM needs for this GPU (from the command builder)."""
        return vllm_env(self.serve)

    @property
    def max_inputs(self) -> int:
        """Concurrent requests per container (Modal's ``@modal.concurrent``)."""
        value = self.serve.max_inputs
        assert value is not None  # resolution always sets it
        return value

    def to_json(self) -> str:
        """JSON text that :meth:`from_json` reads back to an equal deployment."""
        return json.dumps(
            {
                "format": DEPLOYMENT_FORMAT,
                "serve": self.serve.to_dict(),
                "deploy": self.settings.to_dict(),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Deployment:
        """Read what :meth:`to_json` wrote (in the container, from :data:`DEPLOYMENT_ENV`)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(DEPLOYMENT_ENV, text, f"valid JSON ({exc.msg})") from exc
        if not isinstance(data, dict) or data.get("format") != DEPLOYMENT_FORMAT:
            raise ConfigError(
                DEPLOYMENT_ENV,
                data,
                f"a deployment JSON object of format {DEPLOYMENT_FORMAT} (redeploy to refresh it)",
            )
        serve, deploy = data.get("serve"), data.get("deploy")
        if not isinstance(serve, dict) or not isinstance(deploy, dict):
            raise ConfigError(DEPLOYMENT_ENV, data, "'serve' and 'deploy' objects")
        return cls(
            ServeConfig.from_dict(serve, source=DEPLOYMENT_ENV),
            DeploySettings.from_dict(deploy, source=DEPLOYMENT_ENV),
        )


# ---- loading: defaults < TOML [deploy] < GPTOSS_* environment < overrides ----------------


def load_deploy_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> DeploySettings:
    """Deploy settings from defaults < TOML ``[deploy]`` < ``GPTOSS_*`` environment < overrides.

    ``path`` defaults to ``$GPTOSS_CONFIG`` when set; ``env`` to ``os.environ``. An invalid
    value's error names where it came from.
    """
    env = os.environ if env is None else env
    toml_path = path if path is not None else env.get(CONFIG_PATH_ENV)
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if toml_path:
        table = toml_values(DeploySettings, Path(toml_path), "deploy")
        values.update(table)
        sources.update(dict.fromkeys(table, str(toml_path)))
    from_env = env_values(DeploySettings, env)
    values.update(from_env)
    sources.update({name: f"environment {ENV_PREFIX}{name.upper()}" for name in from_env})
    for name, value in (overrides or {}).items():
        values[name] = value
        sources[name] = "overrides"
    for name in values:
        if name not in _HINTS:
            raise ConfigError(
                name,
                values[name],
                f"a [deploy] setting{did_you_mean(name, _HINTS)}",
                source="overrides",
            )
    try:
        return DeploySettings(**values)
    except ConfigError as exc:
        exc.source = exc.source or sources.get(exc.field, "the combination of settings")
        raise


def load_deployment(
    path: str | os.PathLike[str] | None = None, *, env: Mapping[str, str] | None = None
) -> Deployment:
    """The serve config and the deploy settings from one TOML file and one environment."""
    return Deployment(load_config(path, env=env), load_deploy_settings(path, env=env))


# ---- the Hugging Face repos a deployment reads -------------------------------------------


@dataclass(frozen=True)
class HubRepo:
    """A Hub repository vLLM loads at start: the model at its pinned revision, or the draft."""

    role: Literal["model", "speculator"]
    repo_id: str
    revision: str | None  # None: the repo's default branch (vLLM passes no revision)
    # Files vLLM never reads: the original PyTorch checkpoint and Apple Metal weights double the
    # download of gpt-oss.
    ignore_patterns: tuple[str, ...] = ()


GPT_OSS_UNUSED_FILES = ("original/*", "metal/*")


def hub_repos(config: ServeConfig) -> tuple[HubRepo, ...]:
    """The repos vLLM will download for ``config``: what the preflight and ``download`` use."""
    c = config.resolved()
    repos = [HubRepo("model", c.model, c.revision, GPT_OSS_UNUSED_FILES)]
    if c.speculative and c.speculative_model and not c.speculative_model.startswith("/"):
        repos.append(HubRepo("speculator", c.speculative_model, None))
    return tuple(repos)


# ---- the container image ----------------------------------------------------------------

CUDA_BASE_IMAGE = "nvidia/cuda:12.8.1-devel-ubuntu22.04"  # nvcc for FlashInfer's JIT kernels
PYTHON_VERSION = "3.12"
# vLLM pinned to the version whose option table the builder validates against. The Hub client
# stays below 1.0 because vLLM 0.13.0's transformers requires it; hf_transfer speeds up the
# first download.
PINNED_PACKAGES = (f"vllm=={VLLM_VERSION}", "huggingface_hub[hf_transfer]==0.36.0")
PACKAGE_NAME = "gptoss_modal"  # added to the image as local source

# gpt-oss's harmony tokenizer loads the o200k vocabulary by URL at start-up unless
# TIKTOKEN_ENCODINGS_BASE names a directory holding it; in a container without egress to
# openaipublic (or when it is down) the start fails. So the files are baked into the image,
# checked against the SHA-256 values harmony itself verifies.
TIKTOKEN_DIR = "/root/tiktoken_encodings"
TIKTOKEN_BASE_URL = "https://openaipublic.blob.core.windows.net/encodings/"
TIKTOKEN_VOCABULARIES = (
    ("o200k_base.tiktoken", "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
    ("cl100k_base.tiktoken", "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
)

# Run at image build time with the image's Python (python3 exists whatever standalone build Modal
# adds): download, verify, write; fail the build on a hash mismatch.
# Arguments: URL, expected SHA-256, destination path.
_FETCH_AND_VERIFY = (
    "import hashlib, sys, urllib.request; "
    "url, want, dest = sys.argv[1:]; "
    "data = urllib.request.urlopen(url, timeout=120).read(); "
    "got = hashlib.sha256(data).hexdigest(); "
    "sys.exit(f'{url}: sha256 {got}, expected {want}') if got != want else None; "
    "open(dest, 'wb').write(data)"
)


@dataclass(frozen=True)
class ImageRecipe:
    """What goes into the container image, in order; the app turns it into a ``modal.Image``."""

    base_image: str
    python_version: str
    packages: tuple[str, ...]
    build_commands: tuple[str, ...]
    env: dict[str, str]
    local_package: str


def image_recipe(deployment: Deployment) -> ImageRecipe:
    """The image for ``deployment``: pinned packages, the vocabulary, vLLM's GPU environment,
    and the deployment's JSON (the only deployment-specific layer, so it is last and cheap)."""
    fetches = tuple(
        f"python3 -c {shlex.quote(_FETCH_AND_VERIFY)} "
        f"{shlex.quote(TIKTOKEN_BASE_URL + name)} {sha256} {shlex.quote(f'{TIKTOKEN_DIR}/{name}')}"
        for name, sha256 in TIKTOKEN_VOCABULARIES
    )
    env = {
        "HF_HUB_ENABLE_HF_TRANSFER": "1",
        "TIKTOKEN_ENCODINGS_BASE": TIKTOKEN_DIR,
        **deployment.vllm_env,
        DEPLOYMENT_ENV: deployment.to_json(),
    }
    return ImageRecipe(
        base_image=CUDA_BASE_IMAGE,
        python_version=PYTHON_VERSION,
        packages=PINNED_PACKAGES,
        build_commands=(f"mkdir -p {TIKTOKEN_DIR}", *fetches),
        env=env,
        local_package=PACKAGE_NAME,
    )


# ---- what is printed at deploy time, and the messages that say what to do ----------------


def describe(deployment: Deployment) -> str:
    """A human summary of the deployment: printed at deploy time. Holds no key: the deploying
    machine never sees it (it lives in the Modal Secret)."""
    c, s = deployment.serve, deployment.settings
    draft = (
        f"{c.speculative_model} (EAGLE3, {c.num_speculative_tokens} tokens)"
        if c.speculative
        else "off"
    )
    containers = f"{s.min_containers}..{s.max_containers if s.max_containers else 'unbounded'}"
    auth = {
        "api_key": f"api_key: Authorization: Bearer <{API_KEY_ENV} in Modal Secret "
        f"{s.secret_name!r}>",
        "proxy": "proxy: Modal-Key and Modal-Secret headers (Modal proxy auth)",
        "none": "NONE: open to anyone who finds the URL",
    }[s.auth]
    env = " ".join(f"{k}={v}" for k, v in sorted(deployment.vllm_env.items())) or "(none)"
    lines = [
        f"gptoss-modal deployment {s.app_name!r}",
        f"  model        {c.model} @ {c.revision}",
        f"  speculator   {draft}",
        f"  gpu          {c.gpu} (tensor parallel {c.tensor_parallel_size})",
        f"  concurrency  {deployment.max_inputs} requests per container; containers "
        f"{containers}; idle {s.scaledown_window_s} s before scaling down",
        f"  timeouts     start-up {s.startup_timeout_s} s, request {s.timeout_s} s",
        f"  auth         {auth}",
        f"  vllm argv    {shlex.join(deployment.argv)}",
        f"  vllm env     {env}",
        f"  config       {c.to_json()}",
    ]
    lines += [f"  note         {note}" for note in c.advisories()]
    text = "\n".join(lines)
    if s.auth == "none":
        text = f"{open_auth_banner(deployment)}\n{text}"
    return text


def open_auth_banner(deployment: Deployment) -> str:
    """The warning printed at deploy and at every container start when ``auth = "none"``."""
    bar = "!" * 78
    return "\n".join(
        [
            bar,
            '!! auth = "none": this deployment answers ANYONE who finds its URL.',
            f"!! Every request can wake a {deployment.serve.gpu} container billed to your account.",
            '!! Use auth = "api_key" or auth = "proxy" unless that is what you want.',
            bar,
        ]
    )


def missing_secret_message(settings: DeploySettings) -> str:
    """What to do when the API-key Secret does not exist (deploying would fail otherwise)."""
    name = settings.secret_name
    new_key = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
    return (
        f'the Modal Secret {name!r} with {API_KEY_ENV} does not exist, and auth = "api_key" '
        "needs it. Create it (and keep the key for your clients):\n"
        f'  export {CLIENT_API_KEY_ENV}="$({new_key})"\n'
        f'  modal secret create {name} {API_KEY_ENV}="${CLIENT_API_KEY_ENV}"\n'
        "or choose another secret with GPTOSS_SECRET_NAME, "
        'or auth = "proxy" for Modal proxy auth.'
    )


def missing_api_key_message(settings: DeploySettings) -> str:
    """What to do when the container has no key although ``auth = "api_key"``."""
    return (
        f'{API_KEY_ENV} is empty in the container although auth = "api_key": vLLM would serve '
        f"without a key. Put a non-empty {API_KEY_ENV} into the Modal Secret "
        f"{settings.secret_name!r} (modal secret create --force {settings.secret_name} "
        f"{API_KEY_ENV}=...) and redeploy."
    )


def client_credentials(
    settings: DeploySettings, env: Mapping[str, str]
) -> tuple[str | None, dict[str, str]]:
    """The API key and extra headers a client needs for this deployment's auth mode.

    ``api_key`` reads ``GPTOSS_API_KEY``; ``proxy`` reads ``GPTOSS_MODAL_KEY`` and
    ``GPTOSS_MODAL_SECRET`` (a proxy auth token, sent as ``Modal-Key``/``Modal-Secret``).
    Raises :class:`ConfigError` saying what to set when they are missing; the values are never
    part of the message.
    """
    if settings.auth == "api_key":
        key = env.get(CLIENT_API_KEY_ENV, "").strip()
        if not key:
            raise ConfigError(
                CLIENT_API_KEY_ENV,
                "<unset>",
                f"the key stored as {API_KEY_ENV} in the Modal Secret {settings.secret_name!r}: "
                f"export {CLIENT_API_KEY_ENV}=... (see docs/modal-app.md to create or rotate it)",
            )
        return key, {}
    if settings.auth == "proxy":
        return None, proxy_auth_headers(env, required=True)
    return None, {}


def proxy_auth_headers(env: Mapping[str, str], *, required: bool = False) -> dict[str, str]:
    """``Modal-Key``/``Modal-Secret`` from ``GPTOSS_MODAL_KEY``/``GPTOSS_MODAL_SECRET``.

    Neither set gives ``{}`` unless ``required``. Raises :class:`ConfigError` saying what to
    set when only one is set (or neither, if ``required``); never with the values.
    """
    token_id = env.get(PROXY_KEY_ENV, "").strip()
    token_secret = env.get(PROXY_SECRET_ENV, "").strip()
    if not (token_id or token_secret or required):
        return {}
    if not token_id or not token_secret:
        raise ConfigError(
            f"{PROXY_KEY_ENV}/{PROXY_SECRET_ENV}",
            "<unset>",
            "a Modal proxy auth token (create one in the Modal dashboard under Settings > "
            f"Proxy Auth Tokens): export {PROXY_KEY_ENV}=wk-... {PROXY_SECRET_ENV}=ws-...",
        )
    return {"Modal-Key": token_id, "Modal-Secret": token_secret}
