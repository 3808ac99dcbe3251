"""Built-in tools on the mock's Responses endpoint: with ``tool_server="demo"`` (vLLM's
``--tool-server demo``), a request that asks for ``web_search_preview`` or ``code_interpreter``
gets the events vLLM's serving code emits for gpt-oss's ``browser.search`` or ``python`` call,
then the answer turn.

Each version's sequence, transcribed from its serving code (the tool call is output item 0):

- ``browser.search``, 0.13.0 (``serving_responses.py``): no event while the call's arguments
  stream; once the call completes, ``output_item.added`` (``web_search_call``, in progress),
  ``web_search_call.in_progress``, ``.searching``, ``.completed``, ``output_item.done``. The
  final output has a ``web_search_call`` item (``ws_`` id, query ``cursor:<query>``).
- ``browser.search``, 0.33.0 (``streaming_events.py``): the arguments stream as an MCP call
  (``emit_mcp_delta_events``: ``output_item.added`` ``mcp_call`` named ``browser.search``,
  ``mcp_call.in_progress``, ``mcp_call_arguments.delta``...; then ``mcp_call_arguments.done``,
  ``mcp_call.completed``, ``output_item.done``: vLLM's own "TODO: Fix browser emitted as MCP
  calls"), then the same five web-search events, at the same output index. The final output's
  ``web_search_call`` reuses the streamed item's id.
- ``python``, both: ``output_item.added`` (``code_interpreter_call``, code null),
  ``code_interpreter_call.in_progress``, ``code_interpreter_call_code.delta``..., then
  ``code_interpreter_call_code.done``, ``.interpreting``, ``.completed``, ``output_item.done``
  (the code, ``outputs: []``). The final output has it as a reasoning item (both versions
  parse a built-in tool's message as reasoning).

Without a tool server both versions leave built-in tools out of the prompt (only function
tools reach it), so the request is answered as if they were not there.

What the mock simplifies: the tool turn costs no time or tokens (its events go out with the
answer turn's first event, its usage is one turn's), and the call's arguments come in a few
word-sized deltas.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import orjson

from gptoss_modal.testing import _responses_wire as rw
from gptoss_modal.testing._layout import StreamEvents
from gptoss_modal.testing._responses_layout import ResponseLayout

__all__ = ["TOOL_SERVERS", "ToolTurn", "requested_turn", "with_tool_turn"]

TOOL_SERVERS = ("demo",)
"""The tool servers the mock plays (``MockConfig.tool_server``; None: no tool server)."""
RECIPIENTS = {"web_search_preview": "browser.search", "code_interpreter": "python"}
QUERY_CHARS = 80  # characters of the prompt the scripted search query keeps

_Event = dict[str, Any]


def _ev(kind: str, **fields: Any) -> _Event:
    """An event dict in the openai model's key order (sorted; ``name`` last on the MCP
    arguments' done event, declared after the rest)."""
    fields["sequence_number"] = -1
    fields["type"] = kind
    late = ("name",) if kind == "response.mcp_call_arguments.done" else ()
    event = {k: fields[k] for k in sorted(fields) if k not in late}
    event.update((k, fields[k]) for k in late)
    return event


def _pieces(text: str) -> list[str]:
    """The arguments as word-sized deltas (each space kept with the word after it)."""
    return re.findall(r"\s*\S+", text) or [text]


def _search_item(item_id: str, query: str, status: str) -> _Event:
    action = {"type": "search", "queries": None, "query": query, "sources": None}
    return {"id": item_id, "action": action, "status": status, "type": "web_search_call"}


def _code_item(item_id: str, code: str | None, status: str) -> _Event:
    return {
        "id": item_id,
        "code": code,
        "container_id": "auto",
        "outputs": None if code is None else [],
        "status": status,
        "type": "code_interpreter_call",
    }


def _mcp_item(item_id: str, arguments: str, status: str) -> _Event:
    return {
        "id": item_id,
        "arguments": arguments,
        "name": "browser.search",
        "server_label": "browser.search",  # _resolve_mcp_name_label: no label for it
        "type": "mcp_call",
        "approval_request_id": None,
        "error": None,
        "output": None,
        "status": status,
    }


@dataclass(frozen=True)
class ToolTurn:
    """One built-in tool call the mock scripts: its harmony recipient and its arguments."""

    recipient: str  # "browser.search" or "python"
    arguments: str  # the search's JSON, or the code

    @property
    def query(self) -> str:
        value: str = json.loads(self.arguments)["query"]
        return value

    def events(self, version: str) -> tuple[list[_Event], list[_Event]]:
        """The tool turn's events (output index 0), and the items its final output has."""
        if self.recipient == "python":
            return self._python()
        return self._browser(version)

    def _python(self) -> tuple[list[_Event], list[_Event]]:
        item_id = rw.new_id("tool")
        where = {"item_id": item_id, "output_index": 0}
        events = [
            _ev(
                "response.output_item.added",
                output_index=0,
                item=_code_item(item_id, None, "in_progress"),
            ),
            _ev("response.code_interpreter_call.in_progress", **where),
            *(
                _ev("response.code_interpreter_call_code.delta", **where, delta=d)
                for d in _pieces(self.arguments)
            ),
            _ev("response.code_interpreter_call_code.done", **where, code=self.arguments),
            _ev("response.code_interpreter_call.interpreting", **where),
            _ev("response.code_interpreter_call.completed", **where),
            _ev(
                "response.output_item.done",
                output_index=0,
                item=_code_item(item_id, self.arguments, "completed"),
            ),
        ]
        return events, [rw.reasoning_item(rw.new_id("rs"), self.arguments, None)]

    def _browser(self, version: str) -> tuple[list[_Event], list[_Event]]:
        events: list[_Event] = []
        if version != "0.13.0":
            mcp_id = rw.new_id("mcp")
            where = {"item_id": mcp_id, "output_index": 0}
            events += [
                _ev(
                    "response.output_item.added",
                    output_index=0,
                    item=_mcp_item(mcp_id, "", "in_progress"),
                ),
                _ev("response.mcp_call.in_progress", **where),
                *(
                    _ev("response.mcp_call_arguments.delta", **where, delta=d)
                    for d in _pieces(self.arguments)
                ),
                _ev(
                    "response.mcp_call_arguments.done",
                    **where,
                    arguments=self.arguments,
                    name="browser.search",
                ),
                _ev("response.mcp_call.completed", **where),
                _ev(
                    "response.output_item.done",
                    output_index=0,
                    item=_mcp_item(mcp_id, self.arguments, "completed"),
                ),
            ]
        item_id = rw.new_id("tool")
        where = {"item_id": item_id, "output_index": 0}
        events += [
            _ev(
                "response.output_item.added",
                output_index=0,
                item=_search_item(item_id, self.query, "in_progress"),
            ),
            _ev("response.web_search_call.in_progress", **where),
            _ev("response.web_search_call.searching", **where),
            _ev("response.web_search_call.completed", **where),
            _ev(
                "response.output_item.done",
                output_index=0,
                item=_search_item(item_id, self.query, "completed"),
            ),
        ]
        final_id = item_id if version != "0.13.0" else rw.new_id("ws")  # 0.33.0 reuses the id
        return events, [_search_item(final_id, f"cursor:{self.query}", "completed")]


def requested_turn(tools: Any, tool_server: str | None, prompt: str) -> ToolTurn | None:
    """The built-in call a request gets: the first built-in tool it asks for that the tool
    server runs (None without a tool server, as vLLM leaves them out of the prompt)."""
    if tool_server is None or not isinstance(tools, list):
        return None
    for tool in tools:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "web_search_preview":
            query = " ".join(prompt.split())[:QUERY_CHARS]
            return ToolTurn("browser.search", json.dumps({"query": query}))
        if kind == "code_interpreter":
            return ToolTurn("python", "print(sum(range(10)))")
    return None


def _shifted(event: _Event, by: int) -> _Event:
    if "output_index" in event:
        event["output_index"] += by
    return event


def with_tool_turn(
    layout: ResponseLayout, turn: ToolTurn, version: str
) -> tuple[ResponseLayout, list[_Event]]:
    """The answer turn's stream with the tool turn's events before its first generated event
    (the answer's items one output index later), renumbered from 0; and the final output."""
    stream = layout.stream
    parsed = [orjson.loads(e.partition(b"\ndata: ")[2]) for e in stream.events]
    tool_events, tool_items = turn.events(version)
    head, body = parsed[:2], [_shifted(e, len(tool_items)) for e in parsed[2:]]
    output = tool_items + list(layout.final["output"])
    final = {**layout.final, "output": output}
    body[-1] = {**body[-1], "response": final}
    events = head + tool_events + body
    for number, event in enumerate(events):
        event["sequence_number"] = number
    at = 2 if len(stream.times) > 2 else len(stream.times) - 1
    times = stream.times[:2] + [stream.times[at]] * len(tool_events) + stream.times[2:]
    steps = stream.steps_done[:2] + [stream.steps_done[at]] * len(tool_events)
    steps += stream.steps_done[2:]
    new_stream = StreamEvents([rw.event_bytes(e) for e in events], times, steps)
    return ResponseLayout(new_stream, final), output
