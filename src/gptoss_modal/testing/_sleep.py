"""The mock's sleep-mode endpoints (``VLLM_SERVER_DEV_MODE=1``), per vLLM version, and what a
chat request meets while the engine sleeps.

Read from each version's code (the cached venvs):

- 0.13.0 (``entrypoints/serve/sleep/api_router.py``): ``POST /sleep?level=N`` (default 1, read
  with ``int()``: a non-number is an unhandled error, a 500) and ``POST /wake_up[?tags=...]``
  answer an empty 200; ``GET /is_sleeping`` answers ``{"is_sleeping":bool}``. Sleeping does not
  pause the scheduler (``v1/engine/core.py``): a chat request runs on unmapped weights, which
  fails the engine, so here it meets a dead engine (a 500, and ``/health`` 503 from then on).
- 0.33.0 (``entrypoints/serve/dev/sleep/api_router.py``): ``level`` is ``Query(ge=0, le=2)`` and
  ``mode`` one of ``abort|wait|keep`` (a 400 otherwise); ``/sleep`` answers
  ``{"status":"sleeping","level":N}``, ``/wake_up`` ``{"status":"awake"|"sleeping","tags":...}``
  (``"sleeping"`` until every tag is resident again). Sleeping pauses the scheduler
  (``PAUSED_NEW``): a chat request is held, unanswered, until the engine is fully awake.

Faults for the lifecycle tests (``MockConfig.sleep_fault``): ``never-wakes`` (``/wake_up``
answers, the engine stays asleep) and ``garbled-after-wake`` (every chat after a wake gets the
``malformed`` fault: the output a restored engine that had not slept gave in public reports).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing._faults import FAULT_HEADER
from gptoss_modal.testing._state import NOTE, MockState

__all__ = ["SleepEndpoints"]

ALL_TAGS = frozenset({"weights", "kv_cache"})  # what level >= 1 puts to sleep
SCHEDULING = "scheduling"  # 0.33.0's tag for a level-0 sleep (a paused scheduler)
PAUSE_MODES = ("abort", "wait", "keep")
CHAT_PATH = "/v1/chat/completions"

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: object, status: int = 200) -> web.Response:
    body = json.dumps(data, separators=(",", ":")).encode()
    return web.Response(status=status, body=body, content_type="application/json")


class SleepEndpoints:
    """``/sleep``, ``/wake_up``, ``/is_sleeping`` and the middleware for chats while asleep."""

    def __init__(self, state: MockState) -> None:
        self.state = state
        self.sleeping: set[str] = set()  # the tags asleep; empty: awake
        self.woken = False  # a wake happened (garbled-after-wake garbles from then on)
        self._awake = asyncio.Event()
        self._awake.set()

    @property
    def _v13(self) -> bool:
        return self.state.config.version.startswith("0.13.")

    def register(self, app: web.Application) -> None:
        """Add the routes (the server calls this only in dev mode)."""
        app.router.add_post("/sleep", self.sleep)
        app.router.add_post("/wake_up", self.wake_up)
        app.router.add_get("/is_sleeping", self.is_sleeping)

    # --- the endpoints --------------------------------------------------------------------

    async def sleep(self, request: web.Request) -> web.Response:
        """Put the engine to sleep at ``level`` (weights and KV cache; level 0: scheduling)."""
        text = request.query.get("level", "1")
        if self._v13:
            try:
                int(text)
            except ValueError:  # vLLM 0.13.0's int() raises; Starlette answers a bare 500
                return web.Response(status=500, text="Internal Server Error")
            self._fall_asleep(ALL_TAGS)
            return web.Response(status=200)
        mode = request.query.get("mode", "abort")
        number = int(text) if text.lstrip("-").isdigit() else None
        if number is None or not 0 <= number <= 2 or mode not in PAUSE_MODES:
            field = "mode" if number is not None and 0 <= number <= 2 else "level"
            message = f"query.{field}: allowed: level 0-2, mode {'|'.join(PAUSE_MODES)}"
            return web.Response(
                status=400,
                body=wire.error_body(message, "Bad Request", 400),
                content_type="application/json",
            )
        self._fall_asleep(ALL_TAGS if number >= 1 else frozenset({SCHEDULING}))
        return _json({"status": "sleeping", "level": number})

    async def wake_up(self, request: web.Request) -> web.Response:
        """Wake the tags asked for (all by default)."""
        tags = request.query.getall("tags", [])
        if self.state.config.sleep_fault != "never-wakes":
            self.sleeping -= set(tags) if tags else set(self.sleeping)
            if SCHEDULING in self.sleeping and not self.sleeping - {SCHEDULING}:
                self.sleeping.discard(SCHEDULING)  # 0.33.0 resumes once memory is resident
        self.woken = True
        if not self.sleeping:
            self._awake.set()
        if self._v13:
            return web.Response(status=200)
        return _json({"status": "sleeping" if self.sleeping else "awake", "tags": tags or None})

    async def is_sleeping(self, request: web.Request) -> web.Response:
        """``{"is_sleeping": bool}``."""
        return _json({"is_sleeping": bool(self.sleeping)})

    def _fall_asleep(self, tags: frozenset[str]) -> None:
        self.sleeping |= tags
        self._awake.clear()

    # --- chats while asleep ---------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """A chat while asleep: 0.13.0's engine dies; 0.33.0 holds it until the engine wakes."""
        if request.path != CHAT_PATH or request.method != "POST":
            return await handler(request)
        if self.sleeping:
            if self._v13:
                self.state.engine_dead = True
                request[NOTE] = "asleep: engine dead"
            else:
                request[NOTE] = "held while asleep"
                await self._awake.wait()
        if self.woken and self.state.config.sleep_fault == "garbled-after-wake":
            request = request.clone(headers={**request.headers, FAULT_HEADER: "malformed"})
        return await handler(request)
