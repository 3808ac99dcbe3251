"""A mock vLLM 0.13.0 server for gpt-oss: wire-exact streams, realistic timing, injected faults.

Use it in tests (in-process, port 0)::

    from gptoss_modal.testing.mock_server import MockConfig, MockVLLM

    async with MockVLLM(MockConfig(ttft_ms=50, itl_ms=5, stream_interval=4)) as server:
        ...  # talk to server.url (e.g. "http://127.0.0.1:40123")

from synchronous code or another thread (``run_mock_in_thread``), in another process
(``spawn_mock_process``, used by benchmarks so the mock does not share the client's CPU), or
from a terminal: ``gptoss-modal mock --port 8000 --ttft-ms 200 --itl-ms 20``.

What it serves, and how each piece was checked against vLLM 0.13.0's own code, is in
``docs/mock-server.md``. The pure parts live in ``_mock_engine`` (tokens, engine steps,
stream-interval batching, the harmony streaming rules) and ``_mock_wire`` (the bytes).

Faults, per server (``MockConfig.fault``) or per request (header ``X-Mock-Fault``), written
``NAME[:key=value,...]``:

``error``      an in-stream error event, then ``[DONE]`` (keys ``after``, ``code`` 500 or 400,
               ``message``); non-streamed: the same error as a JSON reply
``drop``       the connection is cut mid-stream (key ``after``)
``stall``      no bytes for ``seconds`` (default 3600) mid-stream, then the rest (key ``after``)
``malformed``  a ``data:`` line that is not JSON, then the rest (key ``after``)
``http-500``, ``http-503``, ``http-429``   that status before any byte of a stream
``dead``       the engine is dead (vLLM's ``EngineDeadError``): server-wide, ``/health`` 503 and
               every chat request 500, whatever the options; per request, that request's 500

``after`` counts the events sent before the fault (default: a seeded choice inside the
stream); ``rate`` (0..1, default 1) makes a server-wide fault hit only some requests, chosen
deterministically from the server seed and the request's number.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing import _wire as wire

__all__ = [
    "FAULTS",
    "Fault",
    "MockConfig",
    "MockProcess",
    "MockVLLM",
    "SendRecord",
    "ThreadedMock",
    "parse_fault",
    "run_mock_in_thread",
    "spawn_mock_process",
]

logger = logging.getLogger("gptoss_modal.mock")

FAULTS = ("error", "drop", "stall", "malformed", "http-500", "http-503", "http-429", "dead")
FAULT_HEADER = "X-Mock-Fault"
DEFAULT_STALL_S = 3600.0
MAX_WRITE_BYTES = 64 * 1024  # coalesced writes are cut at this size
_NOTE = web.RequestKey("mock_note", str)  # what the request log line says about a request
_CACHE_SIZE = 256  # generations kept for identical requests (benchmarks send many)


@dataclass(frozen=True)
class Fault:
    """One fault: its name and options (``after`` events, ``rate``, ``seconds``, ...)."""

    name: str
    after: int | None = None
    rate: float = 1.0
    seconds: float = DEFAULT_STALL_S
    code: int = 500
    message: str | None = None


def parse_fault(spec: str) -> Fault:
    """Read ``NAME[:key=value,...]`` (e.g. ``drop:after=5`` or ``error:rate=0.1,code=400``)."""
    name, _, options = spec.strip().partition(":")
    if name not in FAULTS:
        raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
    kwargs: dict[str, Any] = {}
    for item in filter(None, (o.strip() for o in options.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"fault option {item!r} is not key=value")
        if key in ("after", "code"):
            kwargs[key] = int(value)
        elif key in ("rate", "seconds"):
            kwargs[key] = float(value)
        elif key == "message":
            kwargs[key] = value
        else:
            raise ValueError(f"unknown fault option {key!r} (after, rate, seconds, code, message)")
    fault = Fault(name=name, **kwargs)
    if not 0.0 <= fault.rate <= 1.0:
        raise ValueError(f"fault rate {fault.rate} is not within [0, 1]")
    if fault.code not in (400, 500):
        raise ValueError("an in-stream error's code is 400 (BadRequestError) or 500")
    return fault


@dataclass(frozen=True)
class MockConfig:
    """How the mock behaves. Times are in milliseconds, as on the command line."""

    served_model_names: tuple[str, ...] = ("openai/gpt-oss-20b", "llm")
    model: str = "openai/gpt-oss-20b"  # the cards' ``root``
    max_model_len: int = 32768
    api_keys: tuple[str, ...] = ()
    ttft_ms: float = 0.0
    itl_ms: float = 0.0
    jitter_ms: float = 0.0
    seed: int = 0
    stream_interval: int = 1
    content_tokens: int = 64  # content length of a reply that is not cut short
    reasoning_tokens: tuple[tuple[str, int], ...] = tuple(engine.REASONING_TOKENS.items())
    reasoning_shape: Literal["v0.13", "v0.16"] = "v0.13"  # v0.16: no ``reasoning_content``
    tool_parser: bool = True  # as with ``--tool-call-parser openai --enable-auto-tool-choice``
    num_speculative_tokens: int = 0
    spec_acceptance_rate: float = 0.7
    fault: str | None = None
    cold_start_s: float = 0.0
    cold_start_mode: Literal["refuse", "unhealthy"] = "refuse"
    coalesce_writes: bool = True  # False: one write per event, as vLLM's server does
    record_send_times: bool = False
    site_packages: str = "/usr/local/lib/python3.12/site-packages"  # in validation messages
    version: str = "0.13.0"

    def __post_init__(self) -> None:
        if self.stream_interval < 1:
            raise ValueError("stream_interval must be >= 1")
        if min(self.ttft_ms, self.itl_ms, self.jitter_ms, self.cold_start_s) < 0:
            raise ValueError("times must be >= 0")
        if not self.served_model_names:
            raise ValueError("at least one served model name is needed")
        engine.DraftAcceptance(self.num_speculative_tokens, self.spec_acceptance_rate)
        if self.fault:
            parse_fault(self.fault)


@dataclass
class SendRecord:
    """When a stream's bytes were written: one ``time.perf_counter()`` per event."""

    request_id: str
    arrival: float
    event_times: list[float] = field(default_factory=list)


class _Metrics:
    """vLLM's Prometheus metrics, fed by the requests the mock serves."""

    def __init__(self, config: MockConfig) -> None:
        self.labels = f'model_name="{config.served_model_names[0]}",engine="0"'
        self.ttft = wire.Histogram(
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            wire.TTFT_BUCKETS_S,
        )
        self.itl = wire.Histogram(
            "vllm:inter_token_latency_seconds",
            "Histogram of inter-token latency in seconds.",
            wire.ITL_BUCKETS_S,
        )
        self.e2e = wire.Histogram(
            "vllm:e2e_request_latency_seconds",
            "Histogram of e2e request latency in seconds.",
            wire.E2E_BUCKETS_S,
        )
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.success: Counter[str] = Counter()
        self.running = 0
        self.spec_k = config.num_speculative_tokens
        self.drafts = 0
        self.draft_tokens = 0
        self.accepted = 0
        self.accepted_per_pos = [0] * config.num_speculative_tokens

    def count_steps(self, steps: Sequence[engine.Step]) -> None:
        for step in steps:
            if step.drafted:
                self.drafts += 1
                self.draft_tokens += step.drafted
                self.accepted += step.accepted
                for pos in range(step.accepted):
                    self.accepted_per_pos[pos] += 1

    def render(self) -> str:
        lab = self.labels
        parts = [
            wire.gauge_lines(
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                lab,
                self.running,
            ),
            wire.counter_lines(
                "vllm:prompt_tokens",
                "Number of prefill tokens processed.",
                [(lab, self.prompt_tokens)],
            ),
            wire.counter_lines(
                "vllm:generation_tokens",
                "Number of generation tokens processed.",
                [(lab, self.generation_tokens)],
            ),
            wire.counter_lines(
                "vllm:request_success",
                "Count of successfully processed requests.",
                [
                    (f'{lab},finished_reason="{r}"', self.success[r])
                    for r in ("stop", "length", "abort", "error")
                ],
            ),
            self.ttft.render(lab),
            self.itl.render(lab),
            self.e2e.render(lab),
        ]
        if self.spec_k:
            parts += [
                wire.counter_lines(
                    "vllm:spec_decode_num_drafts",
                    "Number of spec decoding drafts.",
                    [(lab, self.drafts)],
                ),
                wire.counter_lines(
                    "vllm:spec_decode_num_draft_tokens",
                    "Number of draft tokens.",
                    [(lab, self.draft_tokens)],
                ),
                wire.counter_lines(
                    "vllm:spec_decode_num_accepted_tokens",
                    "Number of accepted tokens.",
                    [(lab, self.accepted)],
                ),
                wire.counter_lines(
                    "vllm:spec_decode_num_accepted_tokens_per_pos",
                    "Accepted tokens per draft position.",
                    [(f'{lab},position="{i}"', n) for i, n in enumerate(self.accepted_per_pos)],
                ),
            ]
        return "\n".join(parts) + "\n"


class _BadRequest(Exception):
    """A request vLLM would refuse before generating; carries the reply's bytes."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass
class _Plan:
    """Everything about one chat request, decided before the first byte is sent."""

    request_id: str
    model: str
    body: dict[str, Any]
    stream: bool
    generation: engine.Generation
    steps: list[engine.Step]
    times: list[float]  # per step, seconds after arrival
    prompt_tokens: int
    fault: Fault | None
    rng: random.Random


@dataclass(frozen=True)
class _Layout:
    """A stream's events without their heads, kept per generation and request options."""

    bodies: list[bytes | tuple[engine.Delta, int, str | None, int | None]]  # tuple: per request
    completion: int  # tokens in the whole stream
    event_outputs: tuple[int, ...]  # per body, the engine output (batch) it comes with


def _validation(
    loc: tuple[Any, ...], kind: str, msg: str, value: Any, **ctx: Any
) -> dict[str, Any]:
    err: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        err["ctx"] = ctx
    return err


class MockVLLM:
    """The mock server; ``async with MockVLLM(config) as server`` serves on ``server.url``."""

    def __init__(
        self, config: MockConfig | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.config = config or MockConfig()
        self.host = host
        self.port = port
        self._server_fault = parse_fault(self.config.fault) if self.config.fault else None
        # A dead engine is the server's state, not a per-request draw: ``dead`` with any options
        # (even ``rate=``) fails ``/health`` and every chat request.
        self.engine_dead = self._server_fault is not None and self._server_fault.name == "dead"
        self.metrics = _Metrics(self.config)
        self.send_log: dict[str, SendRecord] = {}
        self.requests_seen = 0
        self._acceptance = engine.DraftAcceptance(
            self.config.num_speculative_tokens, self.config.spec_acceptance_rate
        )
        self._runner: web.AppRunner | None = None
        self._socket: socket.socket | None = None
        self._ready_at = 0.0
        self._listen_task: asyncio.Task[None] | None = None
        self._streams: set[asyncio.Task[Any]] = set()
        self._generations: dict[str, engine.Generation] = {}
        self._scripts: dict[str, _Plan] = {}
        self._script_order: deque[str] = deque()
        self.created = int(time.time())

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL (``http://host:port``), known as soon as the server was started."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind the port; listen now, or after the cold start (refusing connections till then)."""
        app = web.Application(middlewares=[self._log_middleware, self._auth_middleware])
        app.router.add_get("/health", self._health)
        app.router.add_get("/version", self._version)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.setblocking(False)
            self._runner, self._socket = runner, sock
            self.port = sock.getsockname()[1]
            self._ready_at = time.monotonic() + self.config.cold_start_s
            if self.config.cold_start_s > 0 and self.config.cold_start_mode == "refuse":
                # A bound socket that does not listen refuses connections, as vLLM's port does
                # while the model loads.
                self._listen_task = asyncio.ensure_future(self._listen_later())
            else:
                await self._listen()
        except BaseException:  # the port is taken, say: leave nothing open behind
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
        for task in list(self._streams):
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

    def set_engine_dead(self, dead: bool = True) -> None:
        """Make ``/health`` answer 503 and chat requests fail as a dead vLLM engine does."""
        self.engine_dead = dead

    def engine_script(self, request_id: str) -> dict[str, Any]:
        """What the pretend engine generated for a recent request (the last 1000 are kept).

        ``{"prompt_tokens", "steps": [[token ids of each engine step]], "finish_reason",
        "stop_reason", "vocab": {token id: text}}``: enough for another implementation (the
        contract tests use vLLM's own app) to serve the same tokens.
        """
        plan = self._scripts[request_id]
        gen = plan.generation
        steps, pos = [], 0
        for step in plan.steps:
            steps.append(gen.tokens[pos : pos + step.tokens])
            pos += step.tokens
        return {
            "prompt_tokens": plan.prompt_tokens,
            "steps": steps,
            "finish_reason": gen.finish_reason,
            "stop_reason": gen.stop_reason,
            "vocab": {str(k): v for k, v in gen.texts.items()},
        }

    def _keep_script(self, plan: _Plan) -> None:
        self._scripts[plan.request_id] = plan
        self._script_order.append(plan.request_id)
        while len(self._script_order) > 1000:
            self._scripts.pop(self._script_order.popleft(), None)

    def spec_decode_totals(self) -> dict[str, int]:
        """The spec-decode counters as ``/metrics`` shows them."""
        m = self.metrics
        return {"drafts": m.drafts, "draft_tokens": m.draft_tokens, "accepted": m.accepted}

    # --- middleware -----------------------------------------------------------------------

    def _warming_up(self) -> bool:
        return time.monotonic() < self._ready_at

    @web.middleware
    async def _log_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        start = time.perf_counter()
        response: web.StreamResponse = await handler(request)
        note = request.get(_NOTE, "")
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
    async def _auth_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._warming_up():
            return web.Response(status=503)
        keys = self.config.api_keys
        if keys and request.method != "OPTIONS" and request.path.startswith("/v1"):
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or token not in keys:
                return web.Response(
                    status=401, body=wire.UNAUTHORIZED, content_type="application/json"
                )
        result: web.StreamResponse = await handler(request)
        return result

    # --- simple endpoints -----------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=503 if self.engine_dead else 200)

    async def _version(self, request: web.Request) -> web.Response:
        return _json(json.dumps({"version": self.config.version}, separators=(",", ":")))

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render().encode(),
            headers={"Content-Type": wire.PROMETHEUS_CONTENT_TYPE},
        )

    async def _models(self, request: web.Request) -> web.Response:
        c = self.config
        body = wire.models_list(c.served_model_names, c.model, c.max_model_len, int(time.time()))
        return _json(body)

    # --- chat completions -----------------------------------------------------------------

    def _choose_fault(self, request: web.Request, number: int) -> Fault | None:
        header = request.headers.get(FAULT_HEADER)
        if header:
            try:
                return parse_fault(header)
            except ValueError as exc:
                raise _BadRequest(
                    400, wire.error_body(f"mock: {exc}", "BadRequestError", 400)
                ) from exc
        fault = self._server_fault
        if fault is None or fault.name == "dead":
            return None
        rng = random.Random(f"{self.config.seed}:fault:{number}")  # noqa: S311 - workload
        return fault if rng.random() < fault.rate else None

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        ctype = request.headers.get("Content-Type", "").lower().split(";", 1)[0]
        if ctype != "application/json":
            msg = "Unsupported Media Type: Only 'application/json' is allowed"
            raise _BadRequest(400, wire.validation_error([msg], endpoint_context=None))
        raw = await request.read()
        context = wire.chat_endpoint_context(self.config.site_packages)
        try:
            body = json.loads(raw)
        except json.JSONDecodeError as exc:
            err = _validation(
                ("body", exc.pos), "json_invalid", "JSON decode error", {}, error=exc.msg
            )
            raise _BadRequest(400, wire.validation_error([err], endpoint_context=context)) from exc
        if not isinstance(body, dict):
            err = _validation(
                ("body",),
                "model_attributes_type",
                "Input should be a valid dictionary or object to extract fields from",
                body,
            )
            raise _BadRequest(400, wire.validation_error([err], endpoint_context=context))
        if "messages" not in body:
            err = _validation(("body", "messages"), "missing", "Field required", body)
            raise _BadRequest(400, wire.validation_error([err], endpoint_context=context))
        effort = body.get("reasoning_effort")
        if effort is not None and effort not in ("low", "medium", "high"):
            expected = "'low', 'medium' or 'high'"
            err = _validation(
                ("body", "reasoning_effort"),
                "literal_error",
                f"Input should be {expected}",
                effort,
                expected=expected,
            )
            raise _BadRequest(400, wire.validation_error([err], endpoint_context=context))
        if body.get("stream_options") is not None and not body.get("stream"):
            text = "Stream options can only be defined when `stream=True`."
            err = _validation(
                ("body",), "value_error", f"Value error, {text}", body, error=ValueError(text)
            )
            raise _BadRequest(400, wire.validation_error([err], endpoint_context=context))
        return body

    def _plan(self, body: dict[str, Any], request: web.Request, number: int) -> _Plan:
        c = self.config
        model = body.get("model")
        if model and model not in c.served_model_names:
            raise _BadRequest(
                404,
                wire.error_body(f"The model `{model}` does not exist.", "NotFoundError", 404),
            )
        fault = self._choose_fault(request, number)
        if self.engine_dead or (fault is not None and fault.name == "dead"):
            # vLLM 0.13.0 checks the model, then raises the engine's EngineDeadError: a 500.
            request[_NOTE] = "fault=dead"
            raise _BadRequest(
                500, wire.error_body(wire.ENGINE_DEAD_MESSAGE, "Internal Server Error", 500)
            )
        if (body.get("n") or 1) != 1:
            raise _BadRequest(
                400, wire.error_body("mock: only n=1 is supported", "BadRequestError", 400)
            )
        messages = body.get("messages") or []
        tools = body.get("tools") or []
        prompt_tokens = engine.count_prompt_tokens(messages, tools)
        requested = body.get("max_completion_tokens") or body.get("max_tokens")
        max_tokens = c.max_model_len - prompt_tokens
        if requested is not None:
            max_tokens = min(max_tokens, int(requested))
        if max_tokens < 1:
            message = (
                f"This model's maximum context length is {c.max_model_len} tokens. However, "
                f"your request has {prompt_tokens} input tokens. Please reduce the length of "
                "the input messages."
            )
            raise _BadRequest(400, wire.error_body(message, "BadRequestError", 400))
        seed = engine.request_seed(c.seed, body.get("seed"), messages)
        inputs = {
            "messages": messages,
            "seed": seed,
            "reasoning_effort": body.get("reasoning_effort"),
            "content_tokens": c.content_tokens,
            "max_tokens": max_tokens,
            "ignore_eos": bool(body.get("ignore_eos")),
            "tools": tools,
            "tool_choice": body.get("tool_choice"),
        }
        key = json.dumps(inputs, sort_keys=True, default=str)
        generation = self._generations.get(key)
        if generation is None:  # identical requests (benchmarks) generate the same tokens
            generation = engine.plan_generation(
                **inputs,  # type: ignore[arg-type]
                reasoning_tokens=dict(c.reasoning_tokens),
            )
            if len(self._generations) >= _CACHE_SIZE:
                self._generations.pop(next(iter(self._generations)))
            self._generations[key] = generation
        acceptance = self._acceptance if c.num_speculative_tokens else None
        steps = engine.engine_steps(len(generation.tokens), acceptance)
        rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - seeded timing jitter
        times = engine.step_times(steps, c.ttft_ms / 1e3, c.itl_ms / 1e3, c.jitter_ms / 1e3, rng)
        header_id = request.headers.get("X-Request-Id")
        request_id = "chatcmpl-" + (header_id if header_id is not None else wire.random_id())
        return _Plan(
            request_id=request_id,
            model=c.served_model_names[0],
            body=body,
            stream=bool(body.get("stream")),
            generation=generation,
            steps=steps,
            times=times,
            prompt_tokens=prompt_tokens,
            fault=fault,
            rng=rng,
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests_seen += 1
        number = self.requests_seen
        try:
            header_fault = request.headers.get(FAULT_HEADER, "")
            if header_fault.startswith("http-") or (
                self._server_fault is not None
                and self._server_fault.name.startswith("http-")
                and not header_fault
            ):
                fault = self._choose_fault(request, number)
                if fault is not None and fault.name.startswith("http-"):
                    request[_NOTE] = f"fault={fault.name}"
                    return _http_fault(int(fault.name[5:]))
            body = await self._read_body(request)
            plan = self._plan(body, request, number)
        except _BadRequest as exc:
            return web.Response(status=exc.status, body=exc.body, content_type="application/json")
        request[_NOTE] = (
            f"{plan.request_id} prompt={plan.prompt_tokens} "
            f"completion={len(plan.generation.tokens)} finish={plan.generation.finish_reason}"
            + (f" fault={plan.fault.name}" if plan.fault else "")
        )
        self._keep_script(plan)
        task = asyncio.current_task()
        if task is not None:
            self._streams.add(task)
        self.metrics.running += 1
        try:
            if plan.stream:
                return await self._stream(request, plan)
            return await self._reply(request, plan)
        finally:
            self.metrics.running -= 1
            if task is not None:
                self._streams.discard(task)

    def _finish_metrics(self, plan: _Plan, arrival: float, served_steps: int) -> None:
        m = self.metrics
        steps = plan.steps[:served_steps]
        m.count_steps(steps)
        m.prompt_tokens += plan.prompt_tokens
        m.generation_tokens += sum(s.tokens for s in steps)
        if steps:
            m.ttft.observe(plan.times[0])
            for before, after in zip(plan.times, plan.times[1:served_steps], strict=False):
                m.itl.observe(after - before)
        m.e2e.observe(time.monotonic() - arrival)
        if served_steps == len(plan.steps):
            m.success[plan.generation.finish_reason] += 1
        else:
            m.success["abort"] += 1

    async def _reply(self, request: web.Request, plan: _Plan) -> web.StreamResponse:
        arrival = time.monotonic()
        if plan.times:
            await asyncio.sleep(plan.times[-1])
        fault = plan.fault
        if fault is not None and fault.name == "stall":
            await asyncio.sleep(fault.seconds)
        if fault is not None and fault.name == "drop":
            self._finish_metrics(plan, arrival, 0)
            _abort(request)
            return web.Response(status=200)
        self._finish_metrics(plan, arrival, len(plan.steps))
        if fault is not None and fault.name == "error":
            message, err_type = _error_kind(fault)
            return web.Response(
                status=fault.code,
                body=wire.error_body(message, err_type, fault.code),
                content_type="application/json",
            )
        if fault is not None and fault.name == "malformed":
            return web.Response(body=b'{"id": "chatcmpl-', content_type="application/json")
        final = engine.final_message(
            plan.generation,
            tool_parser=self.config.tool_parser,
            include_reasoning=plan.body.get("include_reasoning", True) is not False,
        )
        body = wire.chat_response(
            request_id=plan.request_id,
            created=int(time.time()),
            model=plan.model,
            content=final.content,
            reasoning=final.reasoning,
            tool_calls=final.tool_calls,
            finish_reason=final.finish_reason,
            stop_reason=plan.generation.stop_reason,
            prompt_tokens=plan.prompt_tokens,
            completion_tokens=len(plan.generation.tokens),
        )
        return _json(body)

    def _events(self, plan: _Plan) -> tuple[list[bytes], list[float], list[int]]:
        """Every event of the stream, when it is due, and how many steps it completes."""
        body = plan.body
        options = body.get("stream_options")
        include_usage = options is not None and options.get("include_usage", True) is not False
        continuous = include_usage and bool((options or {}).get("continuous_usage_stats"))
        writer = wire.ChunkWriter(
            plan.request_id,
            int(time.time()),
            plan.model,
            reasoning_content=self.config.reasoning_shape == "v0.13",
            continuous_usage=continuous,
            prompt_tokens=plan.prompt_tokens,
        )
        outputs = engine.batch_outputs([s.tokens for s in plan.steps], self.config.stream_interval)
        hide = body.get("include_reasoning", True) is False
        sizes = tuple(n for _, n in outputs)
        # The bodies (all but each event's head: id, created, model) depend only on the
        # generation, how its tokens are batched and these options: a benchmark's repeated
        # requests build them once.
        key = (sizes, hide, include_usage, continuous, plan.prompt_tokens)
        layout = plan.generation.cache.get(key)
        if layout is None:
            layout = self._layout(plan, writer, outputs, hide)
            if len(plan.generation.cache) < 8:
                plan.generation.cache[key] = layout
        # The steps differ between requests with the same sizes (speculative decoding draws
        # acceptances server-wide; different step splits can batch alike): map per request.
        output_steps = [step for step, _ in outputs]
        event_steps = [output_steps[0]]  # the role chunk goes with the first output
        event_steps += [output_steps[i] for i in layout.event_outputs]
        steps_done = [0] + [step + 1 for step in event_steps[1:]]
        if include_usage:
            event_steps.append(event_steps[-1])
            steps_done.append(steps_done[-1])
        event_steps.append(event_steps[-1])  # [DONE]
        steps_done.append(len(plan.steps))
        head = writer.head
        events = [writer.role()]
        for part in layout.bodies:
            # a tool call's first delta carries an id made per request
            if isinstance(part, bytes):
                events.append(head + part)
            else:
                delta, completion, finish, stop = part
                events.append(writer.chunk(writer.delta_json(delta), completion, finish, stop))
        if include_usage:
            events.append(writer.usage(layout.completion))
        events.append(wire.DONE)
        times = plan.times
        return events, [times[step] for step in event_steps], steps_done

    def _layout(
        self,
        plan: _Plan,
        writer: wire.ChunkWriter,
        outputs: list[tuple[int, int]],
        hide: bool,
    ) -> _Layout:
        deltas = engine.harmony_deltas(
            plan.generation, tuple(n for _, n in outputs), include_reasoning=not hide
        )
        bodies: list[bytes | tuple[engine.Delta, int, str | None, int | None]] = []
        event_outputs: list[int] = []
        completion = 0
        tools_streamed = False
        last = len(outputs) - 1
        for number, ((_, size), delta) in enumerate(zip(outputs, deltas, strict=True)):
            completion += size
            finishing = number == last
            if delta.kind is None and not finishing:
                continue
            tools_streamed = tools_streamed or delta.kind in ("tool_start", "tool_args")
            finish = None
            if finishing:
                finish = "tool_calls" if tools_streamed else plan.generation.finish_reason
            stop = plan.generation.stop_reason if finishing else None
            if delta.kind == "tool_start":
                bodies.append((delta, completion, finish, stop))
            else:
                bodies.append(writer.chunk_body(writer.delta_json(delta), completion, finish, stop))
            event_outputs.append(number)
        return _Layout(bodies, completion, tuple(event_outputs))

    async def _stream(self, request: web.Request, plan: _Plan) -> web.StreamResponse:
        arrival = time.monotonic()
        events, times, steps_done = self._events(plan)
        fault = plan.fault
        fault_at = len(events) + 1
        if fault is not None:
            fault_at = (
                fault.after if fault.after is not None else plan.rng.randint(1, len(events) - 1)
            )
            fault_at = max(0, min(fault_at, len(events) - 1))
        response = web.StreamResponse(status=200, headers={"Content-Type": wire.SSE_CONTENT_TYPE})
        await response.prepare(request)
        record = None
        if self.config.record_send_times:
            record = SendRecord(plan.request_id, time.perf_counter())
            self.send_log[plan.request_id] = record
        loop = asyncio.get_running_loop()
        start = loop.time()
        coalesce = self.config.coalesce_writes
        served = 0
        i, n = 0, len(events)
        try:
            while i < n:
                if i == fault_at and fault is not None:
                    assert fault is not None
                    if fault.name == "drop":
                        break
                    if fault.name == "error":
                        message, err_type = _error_kind(fault)
                        await response.write(wire.streaming_error(message, err_type, fault.code))
                        await response.write(wire.DONE)
                        break
                    if fault.name == "stall":
                        await asyncio.sleep(fault.seconds)
                    elif fault.name == "malformed":
                        await response.write(b'data: {"id":"' + plan.request_id.encode() + b"\n\n")
                    fault_at = n + 1
                due = start + times[i]
                now = loop.time()
                if due > now:
                    await asyncio.sleep(due - now)
                    now = loop.time()
                j = i + 1
                if coalesce:
                    size = len(events[i])
                    while j < n and j != fault_at and start + times[j] <= now:
                        size += len(events[j])
                        if size > MAX_WRITE_BYTES:
                            break
                        j += 1
                await response.write(b"".join(events[i:j]) if j > i + 1 else events[i])
                if record is not None:
                    stamp = time.perf_counter()
                    record.event_times.extend([stamp] * (j - i))
                served = steps_done[j - 1]
                i = j
        except ConnectionResetError:  # the client went away: vLLM aborts the request
            request[_NOTE] = request.get(_NOTE, "") + " client-disconnected"
            return response
        finally:
            self._finish_metrics(plan, arrival, served)
        if i < n and fault is not None and fault.name == "drop":
            _abort(request)
            return response
        await response.write_eof()
        return response


def _error_kind(fault: Fault) -> tuple[str, str]:
    if fault.code == 400:
        return fault.message or "mock: injected error", "BadRequestError"
    return fault.message or "Internal server error", "InternalServerError"


def _http_fault(status: int) -> web.Response:
    from http import HTTPStatus

    phrase = HTTPStatus(status).phrase
    headers = {"Retry-After": "1"} if status == 429 else None
    return web.Response(
        status=status,
        body=wire.error_body(f"mock: injected HTTP {status}", phrase, status),
        content_type="application/json",
        headers=headers,
    )


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _json(body: bytes | str) -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    return web.Response(body=data, content_type="application/json")


# --- running it elsewhere -------------------------------------------------------------------


class ThreadedMock:
    """A mock server running on its own event loop in a daemon thread."""

    def __init__(self, config: MockConfig, host: str = "127.0.0.1", port: int = 0) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = MockVLLM(config, host=host, port=port)
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="mock-vllm", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self.loop.close()
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    @property
    def url(self) -> str:
        return self.server.url

    def stop(self) -> None:
        """Stop the server and its thread."""
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@contextlib.contextmanager
def run_mock_in_thread(config: MockConfig | None = None, port: int = 0) -> Iterator[ThreadedMock]:
    """``with run_mock_in_thread(config) as mock: mock.url``: for synchronous callers."""
    mock = ThreadedMock(config or MockConfig(), port=port)
    try:
        yield mock
    finally:
        mock.stop()


@dataclass(frozen=True)
class MockProcess:
    """A mock running in another process: its base URL and process id."""

    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time the process used so far (Linux ``/proc``)."""
        import os

        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def spawn_mock_process(args: Sequence[str] = ()) -> Iterator[MockProcess]:
    """Run ``gptoss-modal mock --port 0 ARGS`` in another process (for benchmarks, so the mock
    does not share the client's core); yields its URL and pid, and stops it afterwards."""
    cmd = [sys.executable, "-m", "gptoss_modal", "mock", "--port", "0", "--quiet", *args]
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as proc:  # closes the pipe
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if "http://" not in line:
                raise RuntimeError(f"the mock did not start: {line!r} (exit {proc.poll()})")
            yield MockProcess(url=line[line.index("http://") :].split()[0], pid=proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":  # python -m gptoss_modal.testing.mock_server [options]
    from gptoss_modal.cli import main

    sys.exit(main(["mock", *sys.argv[1:]]))
