"""``POST /v1/chat/completions``: read and check the request, plan it, and reply or stream.

The planning is :mod:`._planning`'s (API-neutral); what is chat-completions' own is here: the
body's fields, the ``chatcmpl-`` id, the non-streamed reply, the stream's layout and what each
fault does to this API's bytes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing import _harmony_v033 as harmony033
from gptoss_modal.testing import _tool_faults as tool_faults
from gptoss_modal.testing import _validation as validation
from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing import _wire_v033 as wire033
from gptoss_modal.testing._faults import Fault, error_kind
from gptoss_modal.testing._generation import JSON, GenerationEndpoint, abort
from gptoss_modal.testing._layout import ChatStreamOptions, StreamSettings, chat_stream_events
from gptoss_modal.testing._planning import GenerationRequest, Plan
from gptoss_modal.testing._prefix_cache import prompt_tokens_details
from gptoss_modal.testing._state import NOTE, MockState
from gptoss_modal.testing._writer import Interruption, SendRecord, StreamWriter

__all__ = ["ChatCompletions"]


@dataclass
class _ChatRequest:
    """One chat request, everything about it decided before the first byte is sent."""

    request_id: str
    model: str
    body: dict[str, Any]
    plan: Plan
    fault: Fault | None

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


def _generation_request(body: dict[str, Any]) -> GenerationRequest:
    """What a chat body asks the engine for."""
    requested = body.get("max_completion_tokens") or body.get("max_tokens")
    return GenerationRequest(
        messages=body.get("messages") or [],
        tools=body.get("tools") or [],
        tool_choice=body.get("tool_choice"),
        reasoning_effort=body.get("reasoning_effort"),
        max_tokens=None if requested is None else int(requested),
        ignore_eos=bool(body.get("ignore_eos")),
        seed=body.get("seed"),
    )


def _named_tool(body: dict[str, Any]) -> bool:
    """A ``tool_choice`` naming one function: 0.33.0 then finishes with ``stop``, as OpenAI."""
    return isinstance(body.get("tool_choice"), dict)


class ChatCompletions(GenerationEndpoint["_ChatRequest"]):
    """The chat-completions endpoint of one server."""

    def __init__(self, state: MockState) -> None:
        super().__init__(state)
        c = state.config
        self.settings = StreamSettings(
            vllm_version=c.vllm_version,
            stream_interval=c.stream_interval,
            reasoning_content=c.reasoning_shape == "v0.13",
            tool_parser=c.tool_parser,
            fingerprint=c.fingerprint,
            prompt_tokens_details=c.enable_prompt_tokens_details,
        )

    # --- before generating ----------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> dict[str, Any]:
        version = self.version
        validation.check_content_type(request.headers.get("Content-Type", ""), version)
        raw = await request.read()
        context = wire.chat_endpoint_context(self.state.config.site_packages)
        body = validation.parse_json_body(raw, context, version)
        validation.check_chat_body(body, context, version)
        return body

    def _prepare(self, body: dict[str, Any], request: web.Request, number: int) -> _ChatRequest:
        """Checks in vLLM's order (model, engine, options, context length), then the plan."""
        state = self.state
        config = state.config
        fault = self._admit(body, request, number)
        validation.check_harmony_effort(body.get("reasoning_effort"), self.version)
        validation.check_n(body)
        plan = state.planner.plan(_generation_request(body))
        header_id = request.headers.get("X-Request-Id")
        request_id = "chatcmpl-" + (header_id if header_id is not None else wire.random_id())
        return _ChatRequest(request_id, config.served_model_names[0], body, plan, fault)

    # --- the non-streamed reply -----------------------------------------------------------

    async def _reply(self, request: web.Request, chat: _ChatRequest) -> web.StreamResponse:
        early = await self._unstreamed(request, chat, wire.MALFORMED_REPLY)
        if early is not None:
            return early
        plan = chat.plan
        if plan.generation.tool_fault == "harmony-error":
            message = tool_faults.harmony_error_message(plan.generation.tool_name)
            status, body = tool_faults.harmony_error_reply(self.version, message)
            return web.Response(status=status, body=body, content_type=JSON)
        return web.Response(body=self._reply_body(chat), content_type=JSON)

    def _prompt_details(self, chat: _ChatRequest) -> dict[str, Any] | None:
        enabled = self.state.config.enable_prompt_tokens_details
        return prompt_tokens_details(self.version, chat.plan.prompt_cache, enabled)

    def _reply_body(self, chat: _ChatRequest) -> bytes:
        gen = chat.plan.generation
        reply = {
            "tool_parser": self.state.config.tool_parser,
            "include_reasoning": chat.body.get("include_reasoning", True) is not False,
        }
        if self.version != "0.13.0":
            return self._reply_body_033(chat, harmony033.final_message(gen, **reply))
        final = engine.final_message(gen, **reply)
        return wire.chat_response(
            request_id=chat.request_id,
            created=int(time.time()),
            model=chat.model,
            content=final.content,
            reasoning=final.reasoning,
            tool_calls=final.tool_calls,
            finish_reason=final.finish_reason,
            stop_reason=gen.stop_reason,
            prompt_tokens=chat.plan.prompt_tokens,
            completion_tokens=len(gen.tokens),
            prompt_tokens_details=self._prompt_details(chat),
        )

    def _reply_body_033(self, chat: _ChatRequest, final: engine.FinalMessage) -> bytes:
        gen = chat.plan.generation
        sizes = [len(gen.tokens)] if gen.tokens else []
        reasoning_tokens = harmony033.plan_stream(gen, sizes).reasoning_tokens
        finish = gen.finish_reason
        if final.tool_calls and finish == "stop" and not _named_tool(chat.body):
            finish = "tool_calls"
        return wire033.chat_response(
            request_id=chat.request_id,
            created=int(time.time()),
            model=chat.model,
            content=final.content,
            reasoning=final.reasoning,
            tool_calls=final.tool_calls,
            finish_reason=finish,
            stop_reason=gen.stop_reason,
            prompt_tokens=chat.plan.prompt_tokens,
            completion_tokens=len(gen.tokens),
            reasoning_tokens=reasoning_tokens[-1] if reasoning_tokens else 0,
            fingerprint=self.state.config.fingerprint,
            prompt_tokens_details=self._prompt_details(chat),
        )

    # --- the stream -----------------------------------------------------------------------

    def _interruption(self, chat: _ChatRequest, events: list[bytes]) -> Interruption | None:
        """Where the fault strikes (``after`` events, or a seeded choice inside the stream) and
        what it writes there."""
        fault = chat.fault
        if fault is None:
            return self._harmony_error(chat, events, self.version)
        n = len(events)
        at = fault.after if fault.after is not None else chat.plan.rng.randint(1, n - 1)
        at = max(0, min(at, n - 1))
        if fault.name == "drop":
            return Interruption(at, stop=True)
        if fault.name == "error":
            message, err_type = error_kind(fault)
            # 0.13.0 writes it with json.dumps (spaced); 0.33.0 with model_dump_json (compact)
            spaced = self.version == "0.13.0"
            error = (wire if spaced else wire033).streaming_error(message, err_type, fault.code)
            return Interruption(at, payloads=(error, wire.DONE), stop=True)
        if fault.name == "stall":
            return Interruption(at, pause_s=fault.seconds)
        if fault.name == "malformed":
            return Interruption(at, payloads=(wire.malformed_event(chat.request_id),))
        return Interruption(at)

    @staticmethod
    def _harmony_error(
        chat: _ChatRequest, events: list[bytes], version: str
    ) -> Interruption | None:
        """A ``harmony-error`` tool fault: the parser raises on the call's header, so the stream
        stops where the call's first chunk would be (everything before it is sent), with the
        version's error event and ``[DONE]``."""
        gen = chat.plan.generation
        if gen.tool_fault != "harmony-error":
            return None
        marker = b'"tool_calls":['
        at = next((i for i, e in enumerate(events) if marker in e), max(1, len(events) - 2))
        message = tool_faults.harmony_error_message(gen.tool_name)
        error = tool_faults.harmony_error_stream_event(version, message)
        return Interruption(at, payloads=(error, wire.DONE), stop=True)

    async def _stream(self, request: web.Request, chat: _ChatRequest) -> web.StreamResponse:
        state = self.state
        config = state.config
        arrival = time.monotonic()
        stream = chat_stream_events(
            chat.plan,
            request_id=chat.request_id,
            created=int(time.time()),
            model=chat.model,
            options=ChatStreamOptions.from_body(chat.body, self.version),
            settings=self.settings,
            named_tool=_named_tool(chat.body),
        )
        cut = self._interruption(chat, stream.events)
        response = web.StreamResponse(status=200, headers={"Content-Type": wire.SSE_CONTENT_TYPE})
        await response.prepare(request)
        record = None
        if config.record_send_times:
            record = SendRecord(chat.request_id, time.perf_counter())
            state.send_log[chat.request_id] = record
        writer = StreamWriter(
            stream, coalesce=config.coalesce_writes, interruption=cut, record=record
        )
        try:
            await writer.run(response.write)
        except ConnectionResetError:  # the client went away: vLLM aborts the request
            request[NOTE] = request.get(NOTE, "") + " client-disconnected"
            return response
        finally:
            state.metrics.record(chat.plan, time.monotonic() - arrival, writer.served_steps)
        if not writer.sent_all and chat.fault is not None and chat.fault.name == "drop":
            abort(request)
            return response
        await response.write_eof()
        return response
