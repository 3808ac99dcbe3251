"""Oracle ops for the Responses contract tests: streams built by the running vLLM's own code.

Runs only under a cached vLLM venv's interpreter (loaded by ``vllm_oracle.py``), either version.
The op ``responses_stream`` turns a script into the bytes that version's router writes: events
laid out as that version's serving code lays them out (see ``_Events``; the layout itself is
proven by ``test_mock_responses_vllm_app.py``, which runs the serving code), made with the
classes it uses (the openai package's event and item types;
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
    """The events of one scripted response, as that version's serving code emits them (checked
    against the serving code itself by ``test_mock_responses_vllm_app.py``, through the mock):

    * both: a reasoning item is added with ``content`` null; text parts are added with
      ``logprobs=[]`` and done with null; a function call's done item also carries
      ``output_index`` and ``sequence_number`` (-1, set before numbering);
    * 0.33.0: reasoning uses ``response.content_part.*``; done items are ``completed``;
    * 0.13.0: its own ``response.reasoning_part.*``; reasoning items get ``msg_`` ids; an item's
      done events carry the *next* ``output_index`` and the content index is never reset; a
      function call is added with the previous item's id, its done item has ``"id": null``
      and the call's ``item_id``.
    """

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.content_index = -1  # 0.13.0 only counts on
        self.previous_id = ""

    def add(self, cls: Any, **fields: Any) -> None:
        self.events.append(cls(sequence_number=len(self.events), **fields))

    def _part_where(self, item_id: str, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Where an item's part events are, when added and when done (0.13.0 shifts it)."""
        self.content_index = self.content_index + 1 if REASONING_PART else 0
        where = {"item_id": item_id, "output_index": index, "content_index": self.content_index}
        return where, {**where, "output_index": index + 1} if REASONING_PART else where

    def reasoning(self, index: int, deltas: list[str]) -> Any:
        text = "".join(deltas)
        item_id = "msg_rs1" if REASONING_PART else "rs_1"
        item = ResponseReasoningItem(
            id=item_id, type="reasoning", summary=[], content=None, status="in_progress"
        )
        self.add(
            ResponseOutputItemAddedEvent,
            type="response.output_item.added",
            output_index=index,
            item=item,
        )
        part = ReasoningContent(type="reasoning_text", text="")
        where, done_where = self._part_where(item_id, index)
        opened = (
            (vp.ResponseReasoningPartAddedEvent, "response.reasoning_part.added")
            if REASONING_PART
            else (ResponseContentPartAddedEvent, "response.content_part.added")
        )
        # 0.33.0 passes the part as a dict (its class is not in the event's part union)
        self.add(
            opened[0], type=opened[1], part=part if REASONING_PART else part.model_dump(), **where
        )
        for delta in deltas:
            self.add(
                ResponseReasoningTextDeltaEvent,
                type="response.reasoning_text.delta",
                delta=delta,
                **where,
            )
        self.add(
            ResponseReasoningTextDoneEvent,
            type="response.reasoning_text.done",
            text=text,
            **done_where,
        )
        done = ReasoningContent(type="reasoning_text", text=text)
        closed = (
            (vp.ResponseReasoningPartDoneEvent, "response.reasoning_part.done")
            if REASONING_PART
            else (ResponseContentPartDoneEvent, "response.content_part.done")
        )
        self.add(
            closed[0],
            type=closed[1],
            part=done if REASONING_PART else done.model_dump(),
            **done_where,
        )
        item = item.model_copy(update={"content": [done], "status": "completed"})
        self.add(
            ResponseOutputItemDoneEvent,
            type="response.output_item.done",
            output_index=done_where["output_index"],
            item=item,
        )
        self.previous_id = item_id
        # the final response's copy: a fresh id on 0.13.0, status null on both
        final_id = "rs_final1" if REASONING_PART else item_id
        return item.model_copy(update={"id": final_id, "status": None})

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
        where, done_where = self._part_where("msg_1", index)
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
            ResponseTextDoneEvent,
            type="response.output_text.done",
            text=text,
            logprobs=[],
            **done_where,
        )
        part = ResponseOutputText(type="output_text", text=text, annotations=[], logprobs=None)
        self.add(
            ResponseContentPartDoneEvent,
            type="response.content_part.done",
            part=part,
            **done_where,
        )
        item = item.model_copy(update={"content": [part], "status": "completed"})
        self.add(
            ResponseOutputItemDoneEvent,
            type="response.output_item.done",
            output_index=done_where["output_index"],
            item=item,
        )
        self.previous_id = "msg_1"
        return item

    def call(self, index: int, name: str, deltas: list[str]) -> Any:
        added_id = self.previous_id if REASONING_PART else "fc_1"
        item = ResponseFunctionToolCall(
            id=added_id,
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
        done_index = index + 1 if REASONING_PART else index
        extra = (
            {"name": name} if "name" in ResponseFunctionCallArgumentsDoneEvent.model_fields else {}
        )
        self.add(
            ResponseFunctionCallArgumentsDoneEvent,
            type="response.function_call_arguments.done",
            item_id="fc_1",
            output_index=done_index,
            arguments=arguments,
            **extra,
        )
        done_fields: dict[str, Any] = {"output_index": done_index, "sequence_number": -1}
        if REASONING_PART:
            done_fields = {"item_id": "fc_1", **done_fields}
        done = ResponseFunctionToolCall.model_validate(
            {
                **item.model_dump(),
                "id": None if REASONING_PART else "fc_1",
                "call_id": "fc_done1" if REASONING_PART else "call_1",  # 0.13.0: a fresh fc_ id
                "arguments": arguments,
                "status": "completed",
                **done_fields,
            }
        )
        self.add(
            ResponseOutputItemDoneEvent,
            type="response.output_item.done",
            output_index=done_index,
            item=done,
        )
        return ResponseFunctionToolCall(
            id="fc_1",
            call_id="call_1",
            name=name,
            arguments=arguments,
            type="function_call",
            status=None if REASONING_PART else "completed",
        )


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
