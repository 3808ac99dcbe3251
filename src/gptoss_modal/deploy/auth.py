"""What a deployment says about itself and its credentials: the deploy-time summary, the open-auth
banner, the messages that say which Secret to create, and the credentials a client sends."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.deploy.settings import (
    API_KEY_ENV,
    CLIENT_API_KEY_ENV,
    PROXY_KEY_ENV,
    PROXY_SECRET_ENV,
    Deployment,
    DeploySettings,
)
from gptoss_modal.stream._checks import credential  # the one control-character rule

# ---- what is printed at deploy time, and the messages that say what to do ----------------

__all__ = [
    "client_credentials",
    "describe",
    "missing_api_key_message",
    "missing_secret_message",
    "open_auth_banner",
    "proxy_auth_headers",
]


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
    Raises :class:`ConfigError` saying what to set when they are missing or hold a control
    character (a key file saved with CRLF line ends); the values are never part of the message.
    """
    if settings.auth == "api_key":
        key = _secret(env, CLIENT_API_KEY_ENV)
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
    token_id = _secret(env, PROXY_KEY_ENV)
    token_secret = _secret(env, PROXY_SECRET_ENV)
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


def _secret(env: Mapping[str, str], name: str) -> str:
    """A credential from the environment, surrounding spaces removed; a control character in it
    (``$'sk-x\\r'``, DEL) is a :class:`ConfigError` naming the variable, never its value."""
    value = env.get(name, "")
    credential(name, value)
    return value.strip()
