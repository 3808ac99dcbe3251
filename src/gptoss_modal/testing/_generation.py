"""What every generating endpoint does around its own API: count the request, answer an
``http-NNN`` fault before the body is read, read and check the body, log one line, keep the
plan for ``engine_script``, and count the request as running while it streams or replies.

:class:`GenerationEndpoint` does it once; chat completions and the Responses API subclass it
and supply what is theirs: how a body becomes a request (``_prepare``), its non-streamed reply
and its stream.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from typing import Any, Generic, Protocol, TypeVar

from aiohttp import web

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.testing import _validation as validation
from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing._faults import FAULT_HEADER, Fault, choose_fault, error_kind
from gptoss_modal.testing._planning import Plan
from gptoss_modal.testing._state import NOTE, MockState

__all__ = ["JSON", "GenerationEndpoint", "Prepared", "abort"]

JSON = "application/json"


class Prepared(Protocol):
    """One request, everything about it decided before the first byte is sent."""

    @property
    def request_id(self) -> str: ...

    @property
    def plan(self) -> Plan: ...

    @property
    def fault(self) -> Fault | None: ...

    @property
    def stream(self) -> bool: ...


P = TypeVar("P", bound=Prepared)


def abort(request: web.Request) -> None:
    """Close the connection without ending the response (a dropped stream)."""
    transport = request.transport
    if transport is not None:
        transport.abort()


class GenerationEndpoint(ABC, Generic[P]):
    """One generating endpoint of one server (see the module docstring for what it shares)."""

    def __init__(self, state: MockState) -> None:
        self.state = state
        self.version = state.config.vllm_version

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer one request: an error reply, a JSON reply or a stream."""
        state = self.state
        state.requests_seen += 1
        number = state.requests_seen
        try:
            early = self._http_fault(request, number)
            if early is not None:
                return early
            prepared = self._prepare(await self._read_body(request), request, number)
        except validation.Rejection as exc:
            return web.Response(status=exc.status, body=exc.body, content_type=JSON)
        gen = prepared.plan.generation
        request[NOTE] = (
            f"{prepared.request_id} prompt={prepared.plan.prompt_tokens} "
            f"completion={len(gen.tokens)} finish={gen.finish_reason}"
            + (f" fault={prepared.fault.name}" if prepared.fault else "")
            + (f" tool_fault={gen.tool_fault}" if gen.tool_fault else "")
        )
        state.planner.keep(prepared.request_id, prepared.plan)
        task = asyncio.current_task()
        if task is not None:
            state.streams.add(task)
        state.metrics.running += 1
        try:
            if prepared.stream:
                return await self._stream(request, prepared)
            return await self._reply(request, prepared)
        finally:
            state.metrics.running -= 1
            if task is not None:
                state.streams.discard(task)

    @abstractmethod
    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        """The request's JSON body, checked as this API's vLLM route checks it."""

    @abstractmethod
    def _prepare(self, body: dict[str, Any], request: web.Request, number: int) -> P:
        """Everything about the request, decided before the first byte is sent."""

    @abstractmethod
    async def _reply(self, request: web.Request, prepared: P) -> web.StreamResponse:
        """The non-streamed reply."""

    @abstractmethod
    async def _stream(self, request: web.Request, prepared: P) -> web.StreamResponse:
        """The streamed reply."""

    async def _unstreamed(
        self, request: web.Request, prepared: P, malformed: bytes
    ) -> web.StreamResponse | None:
        """Wait out a non-streamed generation (and a ``stall``), count it, and answer what a
        fault makes of the reply (``drop``, ``error``, ``malformed``: ``malformed`` is this
        API's cut JSON); None when the reply goes ahead."""
        arrival = time.monotonic()
        plan, fault = prepared.plan, prepared.fault
        if plan.times:
            await asyncio.sleep(plan.times[-1])
        if fault is not None and fault.name == "stall":
            await asyncio.sleep(fault.seconds)
        dropped = fault is not None and fault.name == "drop"
        served = 0 if dropped else len(plan.steps)
        self.state.metrics.record(plan, time.monotonic() - arrival, served)
        if dropped:
            abort(request)
            return web.Response(status=200)
        if fault is not None and fault.name == "error":
            message, err_type = error_kind(fault)
            body = wire.error_body(message, err_type, fault.code)
            return web.Response(status=fault.code, body=body, content_type=JSON)
        if fault is not None and fault.name == "malformed":
            return web.Response(body=malformed, content_type=JSON)
        return None

    def _admit(self, body: dict[str, Any], request: web.Request, number: int) -> Fault | None:
        """vLLM's first checks, in its order: the model, then a dead engine; the request's
        fault (a ``dead`` fault answers as a dead engine does)."""
        state = self.state
        validation.check_model(body.get("model"), state.config.served_model_names, self.version)
        fault = self._fault(request, number)
        if state.engine_dead or (fault is not None and fault.name == "dead"):
            request[NOTE] = "fault=dead"
            raise validation.engine_dead(self.version)
        return fault

    def _fault(self, request: web.Request, number: int) -> Fault | None:
        """The request's fault; a bad ``X-Mock-Fault`` header is a 400 naming what is wrong."""
        state = self.state
        header = request.headers.get(FAULT_HEADER)
        try:
            return choose_fault(header, state.server_fault, state.config.seed, number)
        except ConfigError as exc:
            body = wire.error_body(f"mock: {exc}", "BadRequestError", 400)
            raise validation.Rejection(400, body) from exc

    def _http_fault(self, request: web.Request, number: int) -> web.Response | None:
        """An ``http-NNN`` fault answers before the body is read, as a proxy would."""
        header = request.headers.get(FAULT_HEADER, "")
        server = self.state.server_fault
        server_http = server is not None and server.http_status is not None
        if not (header.startswith("http-") or (server_http and not header)):
            return None
        fault = self._fault(request, number)
        status = fault.http_status if fault is not None else None
        if fault is None or status is None:
            return None
        request[NOTE] = f"fault={fault.name}"
        body, headers = wire.injected_http_error(status)
        return web.Response(status=status, body=body, content_type=JSON, headers=headers or None)
