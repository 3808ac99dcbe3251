"""The mock's small endpoints: ``/health``, ``/version``, ``/metrics`` and ``/v1/models``."""

from __future__ import annotations

import json
import time

from aiohttp import web

from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing._metrics import PROMETHEUS_CONTENT_TYPE
from gptoss_modal.testing._state import MockState

__all__ = ["InfoEndpoints"]


class InfoEndpoints:
    """The endpoints that report on the server rather than generate."""

    def __init__(self, state: MockState) -> None:
        self.state = state

    async def health(self, request: web.Request) -> web.Response:
        """An empty 200, or 503 while the engine is dead."""
        return web.Response(status=503 if self.state.engine_dead else 200)

    async def version(self, request: web.Request) -> web.Response:
        """``{"version":"0.13.0"}``."""
        body = json.dumps({"version": self.state.config.version}, separators=(",", ":"))
        return web.Response(body=body.encode(), content_type="application/json")

    async def metrics(self, request: web.Request) -> web.Response:
        """The Prometheus text."""
        return web.Response(
            body=self.state.metrics.render().encode(),
            headers={"Content-Type": PROMETHEUS_CONTENT_TYPE},
        )

    async def models(self, request: web.Request) -> web.Response:
        """One card per served model name."""
        c = self.state.config
        body = wire.models_list(c.served_model_names, c.model, c.max_model_len, int(time.time()))
        return web.Response(body=body, content_type="application/json")
