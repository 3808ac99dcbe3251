"""``DevEndpointGuard``: the ASGI middleware that keeps vLLM's dev endpoints inside the container.

A snapshot start needs ``VLLM_SERVER_DEV_MODE=1`` for ``/sleep`` and ``/wake_up``, and vLLM mounts
those on the port Modal serves, outside the API key's ``/v1`` guard: anyone with the URL could
put the engine to sleep. vLLM loads this class with ``--middleware`` (see
:mod:`gptoss_modal.serve.sleep`); it answers 404 (as vLLM does without dev mode) to every path of
:data:`~gptoss_modal.serve.sleep.DEV_PATHS` whose request does not carry the container's token
in the :data:`DEV_TOKEN_HEADER` header. The token is random per container start and reaches vLLM
only through its environment (:data:`DEV_TOKEN_ENV`); without it every dev path is refused.

Plain ASGI and standard library only: it runs inside vLLM's process, with no import of ours
beyond :mod:`gptoss_modal.serve.sleep`.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from gptoss_modal.serve.sleep import DEV_PATHS

__all__ = ["DEV_TOKEN_ENV", "DEV_TOKEN_HEADER", "DevEndpointGuard", "dev_allowed", "new_dev_token"]

DEV_TOKEN_ENV = "GPTOSS_DEV_TOKEN"  # noqa: S105  (a variable's name, not a token)
DEV_TOKEN_HEADER = "x-gptoss-dev-token"  # noqa: S105  (a header's name, not a token)
DEV_TOKEN_BYTES = 32
_NOT_FOUND = b'{"detail":"Not Found"}'  # what vLLM answers for a route it does not have

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def new_dev_token() -> str:
    """A fresh random token for one container start."""
    return secrets.token_urlsafe(DEV_TOKEN_BYTES)


def dev_allowed(path: str, headers: list[tuple[bytes, bytes]], token: str | None) -> bool:
    """Whether a request may pass: any non-dev path; a dev path only with the right token."""
    if (path.rstrip("/") or "/") not in DEV_PATHS:
        return True
    if not token:
        return False
    wanted = DEV_TOKEN_HEADER.encode()
    sent = next((value for name, value in headers if name.lower() == wanted), b"")
    return hmac.compare_digest(sent, token.encode())


class DevEndpointGuard:
    """Refuses vLLM's dev endpoints to anyone without the container's token (ASGI middleware)."""

    def __init__(self, app: ASGIApp, token: str | None = None) -> None:
        self.app = app
        self.token = token if token is not None else os.environ.get(DEV_TOKEN_ENV)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not dev_allowed(
            scope.get("path", ""), list(scope.get("headers", [])), self.token
        ):
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": _NOT_FOUND})
            return
        await self.app(scope, receive, send)
