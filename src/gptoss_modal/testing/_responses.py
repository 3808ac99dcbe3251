"""``POST /v1/responses``, ``GET /v1/responses/{id}`` and ``POST /v1/responses/{id}/cancel``:
the Responses API, planned and paced by the same planner, engine and writer as chat.

What is this API's own is here: the body's fields (``input`` and ``instructions`` become chat
messages before planning, see :mod:`._responses_input`), the ``resp_`` id, the non-streamed
reply, the store (``VLLM_ENABLE_RESPONSES_API_STORE``) and what each fault does to this API's
bytes. The events themselves are :mod:`._responses_layout`'s.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from gptoss_modal.testing import _responses_builtin as builtin
from gptoss_modal.testing import _responses_faults as rfaults
from gptoss_modal.testing import _responses_input as rinput
from gptoss_modal.testing import _responses_wire as rw
from gptoss_modal.testing import _validation as validation
from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing._faults import Fault, error_kind
from gptoss_modal.testing._generation import JSON, GenerationEndpoint, abort
from gptoss_modal.testing._planning import GenerationRequest, Plan
from gptoss_modal.testing._responses_layout import (
    final_output,
    layout_stream,
    reasoning_tokens,
    status_of,
)
from gptoss_modal.testing._state import NOTE, MockState
from gptoss_modal.testing._writer import Interruption, SendRecord, StreamWriter

__all__ = ["RESPONSES_KEPT", "ResponseStore", "Responses"]

RESPONSES_KEPT = 1000  # responses the store keeps (oldest dropped first); vLLM keeps all
_MALFORMED_EVENT = b'event: response.output_text.delta\ndata: {"type":"response.output_te\n\n'


class ResponseStore:
    """The responses kept for retrieval and ``previous_response_id``: each with the chat
    messages of its turn (input then output), the most recent ``limit`` only."""

    def __init__(self, limit: int = RESPONSES_KEPT) -> None:
        self.limit = limit
        self._kept: OrderedDict[str, tuple[bytes, list[dict[str, Any]]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def put(self, response_id: str, body: bytes, history: list[dict[str, Any]]) -> None:
        """Keep a response; the oldest goes once more than ``limit`` are kept."""
        self._kept[response_id] = (body, history)
        self._kept.move_to_end(response_id)
        while len(self._kept) > self.limit:
            self._kept.popitem(last=False)

    def get(self, response_id: str) -> tuple[bytes, list[dict[str, Any]]] | None:
        """The response's JSON and its conversation so far, if kept."""
        return self._kept.get(response_id)


@dataclass
class _Call:
    """One Responses request, everything decided before the first byte is sent."""

    response_id: str
    body: dict[str, Any]
    messages: list[dict[str, Any]]
    plan: Plan
    fault: Fault | None
    echo: rw.Echo
    usage: rw.Usage
    tool_turn: builtin.ToolTurn | None = None  # a built-in tool call before the answer

    @property
    def request_id(self) -> str:
        return self.response_id

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def store(self) -> bool:
        return self.body.get("store", True) is not False


def _assistant_history(output: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A response's output as the chat messages of its turn."""
    out: list[dict[str, Any]] = []
    for item in output:
        if item["type"] == "message":
            text = "".join(part["text"] for part in item["content"])
            out.append({"role": "assistant", "content": text})
        elif item["type"] == "function_call":
            call = {"name": item["name"], "arguments": item["arguments"]}
            tool_call = {"id": item["call_id"], "type": "function", "function": call}
            out.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})
    return out


def _closes_the_connection(call: _Call) -> bool:
    """A drop, or 0.13.0's harmony error escaping the SSE generator: no chunked-encoding end."""
    if call.fault is not None:
        return call.fault.name == "drop"
    return call.plan.generation.tool_fault == rfaults.HARMONY_ERROR


class Responses(GenerationEndpoint[_Call]):
    """The Responses endpoints of one server (``handle`` is ``POST /v1/responses``)."""

    def __init__(self, state: MockState) -> None:
        super().__init__(state)
        self.store = ResponseStore()

    # --- routes -----------------------------------------------------------------------------

    async def retrieve(self, request: web.Request) -> web.Response:
        """``GET /v1/responses/{id}``: the stored response, or vLLM's 404."""
        response_id = request.match_info["response_id"]
        kept = self.store.get(response_id)
        if kept is None:
            body = rw.not_found(response_id, self.version)
            return web.Response(status=404, body=body, content_type=JSON)
        return web.Response(body=kept[0], content_type=JSON)

    async def cancel(self, request: web.Request) -> web.Response:
        """``POST /v1/responses/{id}/cancel``: the mock runs nothing in the background, so a
        kept response is a finished one, which vLLM refuses to cancel (400)."""
        response_id = request.match_info["response_id"]
        if self.store.get(response_id) is None:
            body = rw.not_found(response_id, self.version)
            return web.Response(status=404, body=body, content_type=JSON)
        param = None if self.version == "0.13.0" else "response_id"
        message = "Cannot cancel a synchronous response."
        body = rw.error_body(message, "invalid_request_error", 400, param)
        return web.Response(status=400, body=body, content_type=JSON)

    # --- before generating ------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        validation.check_content_type(request.headers.get("Content-Type", ""), self.version)
        raw = await request.read()
        return validation.parse_json_body(raw, "", self.version)

    def _history(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The conversation ``previous_response_id`` continues (vLLM's 404 if not kept)."""
        previous = body.get("previous_response_id")
        if previous is None:
            return []
        kept = self.store.get(str(previous))
        if kept is None:
            raise validation.Rejection(404, rw.not_found(str(previous), self.version))
        return kept[1]

    def _check_background(self, body: dict[str, Any]) -> None:
        if not body.get("background"):
            return
        if self.state.config.responses_store:
            message = "mock: background responses are not served; send background: false"
        else:  # vLLM's own refusal without the store
            message = (
                "This vLLM engine does not support `store=True` and therefore does not support "
                "the background mode. To enable these features, set the environment variable "
                "`VLLM_ENABLE_RESPONSES_API_STORE=1` when launching the vLLM server."
            )
        param = None if self.version == "0.13.0" else "background"
        body_ = rw.error_body(message, "invalid_request_error", 400, param)
        raise validation.Rejection(400, body_)

    def _prepare(self, body: dict[str, Any], request: web.Request, number: int) -> _Call:
        """Checks in vLLM's order (model, engine, options, context length), then the plan."""
        state = self.state
        config = state.config
        fault = self._admit(body, request, number)
        self._check_background(body)
        reasoning = body.get("reasoning")
        effort = reasoning.get("effort") if isinstance(reasoning, dict) else None
        validation.check_harmony_effort(effort, self.version)
        history = self._history(body)
        messages = rinput.chat_messages(body.get("input", ""), body.get("instructions"), history)
        requested = body.get("max_output_tokens")
        plan = state.planner.plan(
            GenerationRequest(
                messages=messages,
                tools=rinput.chat_tools(body.get("tools")),
                tool_choice=rinput.chat_tool_choice(body.get("tool_choice", "auto")),
                reasoning_effort=effort,
                max_tokens=None if requested is None else int(requested),
                seed=body.get("seed"),
                count_cache=True,  # Responses usage reports the hit without any flag
            )
        )
        gen = plan.generation
        header_id = request.headers.get("X-Request-Id")
        response_id = "resp_" + (header_id if header_id is not None else wire.random_id())
        cache = plan.prompt_cache
        usage = rw.Usage(
            plan.prompt_tokens,
            len(gen.tokens),
            reasoning_tokens(gen, self.version),
            cached_tokens=cache.cached_tokens,
            cache_write_tokens=cache.created_tokens,
        )
        if gen.tool_fault == rfaults.HARMONY_ERROR and self.version != "0.13.0":
            plan = rfaults.without_the_call(plan)  # 0.33.0's parser skips the call's tokens
        prompt = str(messages[-1].get("content") or "") if messages else ""
        turn = builtin.requested_turn(body.get("tools"), config.tool_server, prompt)
        echo = self._echo(body, response_id, plan)
        return _Call(response_id, body, messages, plan, fault, echo, usage, turn)

    def _echo(self, body: dict[str, Any], response_id: str, plan: Plan) -> rw.Echo:
        config = self.state.config
        cap = config.max_model_len - plan.prompt_tokens
        requested = body.get("max_output_tokens")
        extra: dict[str, Any] = {
            k: body[k] for k in ("presence_penalty", "frequency_penalty") if k in body
        }
        return rw.Echo(
            response_id=response_id,
            model=config.served_model_names[0],
            max_output_tokens=cap if requested is None else min(cap, int(requested)),
            instructions=body.get("instructions"),
            metadata=body.get("metadata"),
            parallel_tool_calls=body.get("parallel_tool_calls", True),
            temperature=float(body.get("temperature") or 1.0),
            top_p=float(body.get("top_p") or 1.0),
            tool_choice=body.get("tool_choice", "auto"),
            tools=body.get("tools") or [],
            background=bool(body.get("background")),
            max_tool_calls=body.get("max_tool_calls"),
            previous_response_id=body.get("previous_response_id"),
            reasoning=body.get("reasoning"),
            service_tier=body.get("service_tier") or "auto",
            text=body.get("text"),
            truncation=body.get("truncation") or "disabled",
            user=body.get("user"),
            extra=extra,
        )

    def _keep(self, call: _Call, final: dict[str, Any]) -> None:
        """Store the finished response (with the store on and ``store`` not false)."""
        if self.state.config.responses_store and call.store:
            history = call.messages + _assistant_history(final["output"])
            self.store.put(call.response_id, orjson.dumps(final), history)

    # --- the non-streamed reply -------------------------------------------------------------

    async def _reply(self, request: web.Request, call: _Call) -> web.StreamResponse:
        early = await self._unstreamed(request, call, b'{"id": "resp_')
        if early is not None:
            return early
        plan = call.plan
        gen = plan.generation
        if gen.tool_fault == rfaults.HARMONY_ERROR:  # 0.13.0 only: 0.33.0's plan has no call
            status_code, body = rfaults.harmony_error_reply(gen)
            return web.Response(status=status_code, body=body, content_type=JSON)
        output = final_output(gen, self.version)
        if call.tool_turn is not None:
            output = call.tool_turn.events(self.version)[1] + output
        status = status_of(gen, output, self.version, stream=False)
        final = rw.response_object(
            call.echo,
            self.version,
            created=int(time.time()),
            status=status,
            output=output,
            usage=call.usage,
        )
        self._keep(call, final)
        return web.Response(body=orjson.dumps(final), content_type=JSON)

    # --- the stream -------------------------------------------------------------------------

    def _interruption(self, call: _Call, stream: list[bytes]) -> Interruption | None:
        """Where the fault strikes (``after`` events, or a seeded choice inside the stream) and
        what it writes there: no terminal event follows an error or a drop."""
        fault = call.fault
        events = len(stream)
        if fault is None and call.plan.generation.tool_fault == rfaults.HARMONY_ERROR:
            return Interruption(rfaults.streamed_cut_at(stream), stop=True)  # 0.13.0 only
        if fault is None:
            return None
        at = fault.after if fault.after is not None else call.plan.rng.randint(1, events - 1)
        at = max(0, min(at, events - 1))
        if fault.name == "drop":
            return Interruption(at, stop=True)
        if fault.name == "error":
            message, err_type = error_kind(fault)
            error = rw.streaming_error(message, err_type, fault.code, self.version)
            return Interruption(at, payloads=(error,), stop=True)
        if fault.name == "stall":
            return Interruption(at, pause_s=fault.seconds)
        if fault.name == "malformed":
            return Interruption(at, payloads=(_MALFORMED_EVENT,))
        return Interruption(at)

    async def _stream(self, request: web.Request, call: _Call) -> web.StreamResponse:
        state = self.state
        config = state.config
        arrival = time.monotonic()
        layout = layout_stream(
            call.plan,
            version=self.version,
            echo=call.echo,
            created=int(time.time()),
            usage=call.usage,
            stream_interval=config.stream_interval,
        )
        if call.tool_turn is not None:
            layout, _ = builtin.with_tool_turn(layout, call.tool_turn, self.version)
        cut = self._interruption(call, layout.stream.events)
        response = web.StreamResponse(status=200, headers={"Content-Type": wire.SSE_CONTENT_TYPE})
        await response.prepare(request)
        record = None
        if config.record_send_times:
            record = SendRecord(call.response_id, time.perf_counter())
            state.send_log[call.response_id] = record
        writer = StreamWriter(
            layout.stream, coalesce=config.coalesce_writes, interruption=cut, record=record
        )
        try:
            await writer.run(response.write)
        except ConnectionResetError:  # the client went away: vLLM aborts the request
            request[NOTE] = request.get(NOTE, "") + " client-disconnected"
            return response
        finally:
            state.metrics.record(call.plan, time.monotonic() - arrival, writer.served_steps)
        if writer.sent_all:
            self._keep(call, layout.final)
        if not writer.sent_all and _closes_the_connection(call):
            abort(request)
            return response
        await response.write_eof()
        return response
