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
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.command import build_vllm_command, vllm_env
from gptoss_modal.serve.config import (
    CONFIG_PATH_ENV,
    ENV_PREFIX,
    GPUSpec,
    ServeConfig,
    load_config,
)
from gptoss_modal.serve.loading import (
    check_range,
    check_types,
    did_you_mean,
    env_values,
    toml_values,
)
from gptoss_modal.serve.sleep import sleep_mode

__all__ = [
    "API_KEY_ENV",
    "AUTH_MODES",
    "CLIENT_API_KEY_ENV",
    "COLD_STARTS",
    "DEPLOYMENT_ENV",
    "PROXY_KEY_ENV",
    "PROXY_SECRET_ENV",
    "AuthMode",
    "ColdStart",
    "DeploySettings",
    "Deployment",
    "PreflightMode",
    "load_deploy_settings",
    "load_deployment",
]

MINUTES = 60  # seconds

AuthMode = Literal["api_key", "proxy", "none"]
PreflightMode = Literal["strict", "warn", "off"]
# How a container starts: "plain" runs vLLM from scratch; "snapshot" restores a GPU memory
# snapshot of a warmed-up, sleeping vLLM (Modal alpha; see deploy/snapshot.py).
ColdStart = Literal["plain", "snapshot"]
COLD_STARTS: tuple[ColdStart, ...] = ("plain", "snapshot")
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
    cold_start: ColdStart = "plain"  # "snapshot": restore a GPU memory snapshot (opt-in)

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
        if self.cold_start not in COLD_STARTS:
            raise ConfigError(
                "cold_start",
                self.cold_start,
                "'plain' (start vLLM from scratch) or 'snapshot' (restore a GPU memory snapshot)",
            )

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
        if self.settings.cold_start == "snapshot":
            _check_snapshot(self.serve)

    @property
    def argv(self) -> list[str]:
        """The ``vllm serve`` argv the container runs (from the command builder)."""
        return build_vllm_command(self.serve)

    @property
    def vllm_env(self) -> dict[str, str]:
        """The environment vLLM needs for this GPU (from the command builder)."""
        return vllm_env(self.serve)

    @property
    def snapshot_argv(self) -> list[str]:
        """The argv of a snapshot start: the builder's, with sleep mode and the dev guard."""
        return [*self.argv, *sleep_mode(self.serve.vllm_version).flags]

    @property
    def snapshot_env(self) -> dict[str, str]:
        """The environment of a snapshot start: the builder's and the dev endpoints'."""
        return {**self.vllm_env, **sleep_mode(self.serve.vllm_version).env}

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


def _check_snapshot(serve: ServeConfig) -> None:
    """A snapshot start where it cannot apply is an error now, not a broken container later."""
    tp = GPUSpec.parse(serve.gpu).count
    if tp > 1:
        # Modal documents and demonstrates GPU snapshots of one GPU; vLLM's own snapshot command
        # (0.33.0, vllm/snapshot/) also requires tensor, pipeline and data parallel size 1.
        raise ConfigError(
            "cold_start",
            "snapshot",
            f"'plain' with a multi-GPU spec ({serve.gpu}: tensor parallel {tp}); GPU snapshots "
            "are supported on one GPU",
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
