"""``MockVLLM``: the aiohttp server that routes to the mock's endpoints, with its lifecycle
(bind, cold start, stop) and middleware (request log, cold-start 503, API keys)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing._chat import ChatCompletions
from gptoss_modal.testing._config import MockConfig
from gptoss_modal.testing._endpoints import InfoEndpoints
from gptoss_modal.testing._metrics import EngineMetrics
from gptoss_modal.testing._responses import Responses
from gptoss_modal.testing._sleep import SleepEndpoints
from gptoss_modal.testing._state import NOTE, SESSION_HEADER, MockState
from gptoss_modal.testing._writer import SendRecord

__all__ = ["MockVLLM"]

logger = logging.getLogger("gptoss_modal.mock")

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class MockVLLM:
    """The mock server; ``async with MockVLLM(config) as server`` serves on ``server.url``."""

    def __init__(
        self, config: MockConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = MockState(config or MockConfig())
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None
        self._ready_at = 0.0
        self._listen_task: asyncio.Task[None] | None = None
        self.sleep = SleepEndpoints(self.state)  # served in dev mode only

    # --- what it knows --------------------------------------------------------------------

    @property
    def config(self) -> MockConfig:
        """How it behaves."""
        return self.state.config

    @property
    def metrics(self) -> EngineMetrics:
        """What ``/metrics`` shows."""
        return self.state.metrics

    @property
    def send_log(self) -> dict[str, SendRecord]:
        """Per request id, when each event was written (with ``record_send_times``)."""
        return self.state.send_log

    @property
    def requests_seen(self) -> int:
        """Chat requests received so far."""
        return self.state.requests_seen

    @property
    def created(self) -> int:
        """When the server was made (Unix seconds)."""
        return self.state.created

    @property
    def engine_dead(self) -> bool:
        """Whether ``/health`` answers 503 and chat requests fail as with a dead engine."""
        return self.state.engine_dead

    @engine_dead.setter
    def engine_dead(self, dead: bool) -> None:
        self.state.engine_dead = dead

    def set_engine_dead(self, dead: bool = True) -> None:
        """Make ``/health`` answer 503 and chat requests fail as a dead vLLM engine does."""
        self.state.engine_dead = dead

    def engine_script(self, request_id: str) -> dict[str, Any]:
        """What the pretend engine generated for a recent request (the last 1000 are kept).

        ``{"prompt_tokens", "steps": [[token ids of each engine step]], "finish_reason",
        "stop_reason", "vocab": {token id: text}, "cached_tokens", "created_cache_tokens"}``:
        enough for another implementation (the contract tests use vLLM's own app) to serve the
        same tokens (the last two: the prefix cache's hit and writes, 0 unless reported).
        """
        plan = self.state.planner.kept(request_id)
        gen = plan.generation
        return {
            "prompt_tokens": plan.prompt_tokens,
            "steps": plan.step_tokens(),
            "finish_reason": gen.finish_reason,
            "stop_reason": gen.stop_reason,
            "vocab": {str(k): v for k, v in gen.texts.items()},
            "cached_tokens": plan.prompt_cache.cached_tokens,
            "created_cache_tokens": plan.prompt_cache.created_tokens,
        }

    def spec_decode_totals(self) -> dict[str, int]:
        """The spec-decode counters as ``/metrics`` shows them."""
        return self.state.metrics.spec_decode_totals()

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def session_requests(self) -> dict[str, int]:
        """Requests seen per ``Modal-Session-ID`` header value (a copy)."""
        return dict(self.state.sessions)

    @property
    def distinct_sessions(self) -> int:
        """How many distinct ``Modal-Session-ID`` values the /v1 requests carried."""
        return len(self.state.sessions)

    @property
    def tool_faults_applied(self) -> dict[str, int]:
        """Tool-call faults injected so far, by kind (``name-leak``, ``harmony-error``, ...)."""
        return dict(self.state.planner.tool_faults.applied)

    @property
    def tool_calls_planned(self) -> int:
        """Tool-call turns planned so far (the count the fault rates apply to)."""
        return self.state.planner.tool_faults.calls

    @property
    def url(self) -> str:
        """The base URL (``http://host:port``), known as soon as the server was started."""
        return f"http://{self.host}:{self.port}"

    def _app(self) -> web.Application:
        middlewares = [self._log_middleware, self._auth_middleware]
        if self.config.dev_mode:  # VLLM_SERVER_DEV_MODE=1: the sleep endpoints
            middlewares.append(self.sleep.middleware)
        app = web.Application(middlewares=middlewares)
        if self.config.dev_mode:
            self.sleep.register(app)
        info = InfoEndpoints(self.state)
        app.router.add_get("/health", info.health)
        app.router.add_get("/version", info.version)
        app.router.add_get("/metrics", info.metrics)
        app.router.add_get("/v1/models", info.models)
        app.router.add_post("/v1/chat/completions", ChatCompletions(self.state).handle)
        responses = Responses(self.state)
        app.router.add_post("/v1/responses", responses.handle)
        app.router.add_get("/v1/responses/{response_id}", responses.retrieve)
        app.router.add_post("/v1/responses/{response_id}/cancel", responses.cancel)
        return app

    async def start(self) -> None:
        """Bind the port; listen now, or after the cold start (refusing connections till then)."""
        runner = web.AppRunner(self._app(), access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        cold_start_s = self.config.cold_start_s
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
            self._runner, self._socket = runner, sock
            self.port = sock.getsockname()[1]
            self._ready_at = time.monotonic() + cold_start_s
            if cold_start_s > 0 and self.config.cold_start_mode == "refuse":
                # A bound socket that does not listen refuses connections, as vLLM's port does
                # while the model loads.
                self._listen_task = asyncio.ensure_future(self._listen_later())
            else:
                await self._listen()
        except (asyncio.CancelledError, Exception):  # the port is taken, say: leave nothing open
            self._runner = self._socket = None
            sock.close()
            await runner.cleanup()
            raise

    async def _listen(self) -> None:
        assert self._runner is not None
        assert self._socket is not None
        site = web.SockSite(self._runner, self._socket)
        await site.start()

    async def _listen_later(self) -> None:
        await asyncio.sleep(self.config.cold_start_s)
        await self._listen()

    async def stop(self) -> None:
        """Stop serving; open streams are cancelled."""
        if self._listen_task is not None:
            self._listen_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listen_task
        for task in list(self.state.streams):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    async def __aenter__(self) -> MockVLLM:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- middleware -----------------------------------------------------------------------

    @web.middleware
    async def _log_middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        start = time.perf_counter()
        if request.path.startswith("/v1/"):
            self.state.note_session(request.headers.get(SESSION_HEADER))
        response = await handler(request)
        note = request.get(NOTE, "")
        logger.info(
            '%s "%s %s" %d %.1fms%s',
            request.remote,
            request.method,
            request.path,
            response.status,
            (time.perf_counter() - start) * 1000,
            f" {note}" if note else "",
        )
        return response

    @web.middleware
    async def _auth_middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        if time.monotonic() < self._ready_at:  # warming up
            return web.Response(status=503)
        keys = self.config.api_keys
        if keys and request.method != "OPTIONS" and request.path.startswith("/v1"):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not key_matches(token, keys):
                return web.Response(
                    status=401, body=wire.UNAUTHORIZED, content_type="application/json"
                )
        return await handler(request)


def key_matches(token: str, keys: tuple[str, ...]) -> bool:
    """Whether ``token`` is one of ``keys``, checked as vLLM checks: SHA-256 digests compared
    in constant time against every key, so the time taken says nothing about the keys."""
    digest = hashlib.sha256(token.encode("utf-8")).digest()
    matched = False
    for key in keys:
        matched |= secrets.compare_digest(digest, hashlib.sha256(key.encode("utf-8")).digest())
    return matched
