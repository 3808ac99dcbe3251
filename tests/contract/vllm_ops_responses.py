"""Oracle ops for the Responses contract tests: streams built by the running vLLM's own code.

Runs only under a cached vLLM venv's interpreter (loaded by ``vllm_oracle.py``), either version.
The op ``responses_stream`` turns a script into the bytes that version's router writes: events
made with the classes vLLM's serving code uses (the openai package's event and item types;
vLLM's own ``ResponsesResponse.from_request``, ``ResponseUsage`` and, on 0.13.0, its own
``response.reasoning_part.*`` events), serialised by that version's own
``_convert_stream_to_sse_events`` (``model_dump_json()`` on 0.13.0, ``by_alias=True`` on 0.33.0).

Script: ``{"reasoning": [str], "text": [str], "call": {"name", "arguments": [str]} | null,
"terminal": "completed" | "incomplete", "usage": {"input", "output", "reasoning", "cached"}}``.
The answer is ``{"sse": str, "version": str}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from openai.types.responses import (
    ResponseContentPartAddedEvent,
    ResponseContentPartDoneEvent,
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseFunctionCallArgumentsDoneEvent,
    ResponseFunctionToolCall,
    ResponseOutputItemAddedEvent,
    ResponseOutputItemDoneEvent,
    ResponseOutputMessage,
    ResponseOutputText,
    ResponseReasoningItem,
    ResponseReasoningTextDeltaEvent,
    ResponseReasoningTextDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from openai.types.responses.response import IncompleteDetails
from openai.types.responses.response_reasoning_item import Content as ReasoningContent
from vllm import SamplingParams

try:  # 0.33.0: the Responses code has its own package
    from vllm.entrypoints.openai.responses import protocol as vp
    from vllm.entrypoints.openai.responses.api_router import _convert_stream_to_sse_events

    REASONING_PART = False
except ImportError:  # 0.13.0
    from vllm.entrypoints.openai import protocol as vp
    from vllm.entrypoints.openai.api_server import (
        _convert_stream_to_sse_events,
    )

    REASONING_PART = True


def _usage(counts: dict[str, int]) -> Any:
    details = {"cached_tokens": counts.get("cached", 0)}
    detail_fields = vp.ResponseUsage.model_fields["input_tokens_details"].annotation.model_fields
    if "cache_write_tokens" in detail_fields:  # not in 0.13.0's usage
        details["cache_write_tokens"] = 0
    return vp.ResponseUsage.model_validate(
        {
            "input_tokens": counts["input"],
            "output_tokens": counts["output"],
            "total_tokens": counts["input"] + counts["output"],
            "input_tokens_details": details,
            "output_tokens_details": {"reasoning_tokens": counts.get("reasoning", 0)},
        }
    )


class _Events:
    """The events of one scripted response, numbered as vLLM numbers them."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def add(self, cls: Any, **fields: Any) -> None:
        self.events.append(cls(sequence_number=len(self.events), **fields))

    def reasoning(self, index: int, deltas: list[str]) -> Any:
        text = "".join(deltas)
        item = ResponseReasoningItem(
            id="rs_1", type="reasoning", summary=[], content=[], status="in_progress"
        )
        self.add(
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            output_index=index,
            item=item,
        )
        part = ReasoningContent(type="reasoning_text", text="")
        where = {"item_id": "rs_1", "output_index": index, "content_index": 0}
        if REASONING_PART:
            self.add(
                vp.ResponseReasoningPartAddedEvent,
                type="response.reasoning_part.added",
                part=part,
                **where,
            )
        for delta in deltas:
            self.add(
                ResponseReasoningTextDeltaEvent,
                type="response.reasoning_text.delta",
                delta=delta,
                **where,
            )
        self.add(
            ResponseReasoningTextDoneEvent, type="response.reasoning_text.done", text=text, **where
        )
        done = ReasoningContent(type="reasoning_text", text=text)
        if REASONING_PART:
            self.add(
                vp.ResponseReasoningPartDoneEvent,
                type="response.reasoning_part.done",
                part=done,
                **where,
            )
        item = item.model_copy(update={"content": [done], "status": "completed"})
        self.add(
            ResponseOutputItemDoneEvent,
            type="response.output_item.done",
            output_index=index,
            item=item,
        )
        return item

    def message(self, index: int, deltas: list[str]) -> Any:
        text = "".join(deltas)
        item = ResponseOutputMessage(
            id="msg_1", type="message", role="assistant", status="in_progress", content=[]
        )
        self.add(
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            output_index=index,
            item=item,
        )
        where = {"item_id": "msg_1", "output_index": index, "content_index": 0}
        empty = ResponseOutputText(type="output_text", text="", annotations=[], logprobs=[])
        self.add(
            ResponseContentPartAddedEvent, type="response.content_part.added", part=empty, **where
        )
        for delta in deltas:
            self.add(
                ResponseTextDeltaEvent,
                type="response.output_text.delta",
                delta=delta,
                logprobs=[],
                **where,
            )
        self.add(
            ResponseTextDoneEvent, type="response.output_text.done", text=text, logprobs=[], **where
        )
        part = empty.model_copy(update={"text": text})
        self.add(
            ResponseContentPartDoneEvent, type="response.content_part.done", part=part, **where
        )
        item = item.model_copy(update={"content": [part], "status": "completed"})
        self.add(
            ResponseOutputItemDoneEvent,
            type="response.output_item.done",
            output_index=index,
            item=item,
        )
        return item

    def call(self, index: int, name: str, deltas: list[str]) -> Any:
        item = ResponseFunctionToolCall(
            id="fc_1",
            call_id="call_1",
            name=name,
            arguments="",
            type="function_call",
            status="in_progress",
        )
        self.add(
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            output_index=index,
            item=item,
        )
        for delta in deltas:
            self.add(
                ResponseFunctionCallArgumentsDeltaEvent,
                type="response.function_call_arguments.delta",
                item_id="fc_1",
                output_index=index,
                delta=delta,
            )
        arguments = "".join(deltas)
        extra = (
            {"name": name} if "name" in ResponseFunctionCallArgumentsDoneEvent.model_fields else {}
        )
        self.add(
            ResponseFunctionCallArgumentsDoneEvent,
            type="response.function_call_arguments.done",
            item_id="fc_1",
            output_index=index,
            arguments=arguments,
            **extra,
        )
        item = item.model_copy(update={"arguments": arguments, "status": "completed"})
        self.add(
            ResponseOutputItemDoneEvent,
            type="response.output_item.done",
            output_index=index,
            item=item,
        )
        return item


def _response(output: list[Any], status: str, usage: Any) -> Any:
    request = vp.ResponsesRequest(input="hi", model="openai/gpt-oss-20b", stream=True)
    return vp.ResponsesResponse.from_request(
        request,
        SamplingParams(max_tokens=64),
        model_name="openai/gpt-oss-20b",
        created_time=1764633600,
        output=output,
        status=status,
        usage=usage,
    )


def responses_stream(req: dict[str, Any]) -> dict[str, Any]:
    script = req["script"]
    events = _Events()
    start = _response([], "in_progress", None)
    events.add(vp.ResponseCreatedEvent, type="response.created", response=start)
    events.add(vp.ResponseInProgressEvent, type="response.in_progress", response=start)
    output = [events.reasoning(0, script["reasoning"]), events.message(1, script["text"])]
    if script.get("call"):
        output.append(events.call(2, script["call"]["name"], script["call"]["arguments"]))
    terminal = script.get("terminal", "completed")
    if not hasattr(vp, "ResponseIncompleteEvent"):  # 0.13.0 ends every stream as completed
        terminal = "completed"
    final = _response(output, terminal, _usage(script["usage"]))
    if terminal == "incomplete":
        final.incomplete_details = IncompleteDetails(reason="max_output_tokens")
        events.add(vp.ResponseIncompleteEvent, type="response.incomplete", response=final)
    else:
        events.add(vp.ResponseCompletedEvent, type="response.completed", response=final)

    async def generate() -> Any:
        for event in events.events:
            yield event

    async def render() -> str:
        return "".join([piece async for piece in _convert_stream_to_sse_events(generate())])

    return {"ok": True, "sse": asyncio.run(render()), "version": __import__("vllm").__version__}


OPS = {"responses_stream": responses_stream}
