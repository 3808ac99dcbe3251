"""A scripted stand-in for the streaming client, for the driver's tests (no network)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from gptoss_modal import ChatChunk, ChatResult, Choice, Delta, Usage
from gptoss_modal.bench.budgets import Budgets
from gptoss_modal.bench.results import BenchRun
from gptoss_modal.bench.run import run_benchmark
from gptoss_modal.bench.settings import BenchSettings, Level
from gptoss_modal.stream.chunks import FunctionDelta, PromptTokensDetails, ToolCallDelta
from gptoss_modal.stream.client import HealthProgress
from gptoss_modal.stream.responses import (
    EVENT_TYPES,
    FunctionCallArgumentsDelta,
    InputTokensDetails,
    OutputItem,
    OutputTextDelta,
    ReasoningTextDelta,
    ResponseObject,
    ResponseUsage,
)
from gptoss_modal.stream.responses_accumulator import ResponseResult

# Arguments that fit the agentic tools' schemas, by JSON type.
_VALUES: dict[str, Any] = {"string": "Paris", "integer": 3, "number": 2.5, "boolean": True}
# How a scripted tool call is broken, by the fault's name: (name, arguments) from the good ones.
BREAKS: dict[str, Callable[[str, str], tuple[str, str]]] = {
    "leak": lambda name, args: (f"{name}<|channel|>commentary", args),
    "not_json": lambda name, args: (name, args[: len(args) // 2]),
    "unknown": lambda name, args: ("no_such_tool", args),
    "schema": lambda name, args: (name, "{}"),
}


def _text(message: Mapping[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return str(message.get("output", "") or message.get("arguments", "") or "")


def _words(messages: Sequence[Mapping[str, Any]]) -> int:
    return sum(len(_text(m).split(":")[-1].split()) for m in messages)


def scripted_call(
    tools: Sequence[Mapping[str, Any]] | None, tool_choice: Any, last: Mapping[str, Any]
) -> tuple[str, str] | None:
    """The tool call a scripted server makes: the named tool, or with ``auto`` on a user turn
    the tool the question names; ``None`` after a tool result or without tools."""
    if not tools:
        return None
    by_name = {str(t.get("function", t)["name"]): t.get("function", t) for t in tools}
    name: str | None = None
    if isinstance(tool_choice, dict):
        name = tool_choice.get("name") or (tool_choice.get("function") or {}).get("name")
    elif tool_choice == "auto" and last.get("role") == "user":
        found = re.search(r"\b(\w+) tool\b", _text(last))
        name = found.group(1) if found and found.group(1) in by_name else None
    if name is None or name not in by_name:
        return None
    params = by_name[name].get("parameters") or {}
    props = params.get("properties") or {}
    args = {
        key: (props[key].get("enum") or [_VALUES[props[key].get("type", "string")]])[0]
        for key in params.get("required") or ()
    }
    return name, json.dumps(args)


class ScriptedStream:
    """A stream that 'receives' a vLLM-shaped gpt-oss reply at scripted offsets."""

    def __init__(
        self,
        client: ScriptedClient,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: int,
        extra: Mapping[str, Any] | None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.client = client
        self.messages = messages
        self.max_tokens = max_tokens
        self.extra = extra
        self.tools = tools
        self.headers = dict(headers or {})
        self.result = ChatResult()

    def _call(self, number: int) -> tuple[str, str] | None:
        tool_choice = (self.extra or {}).get("tool_choice")
        call = scripted_call(self.tools, tool_choice, self.messages[-1] if self.messages else {})
        fault = self.client.tool_faults.get(number)
        if call is not None and fault is not None:
            call = BREAKS[fault](*call)
        return call

    async def __aenter__(self) -> ScriptedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def collect(self) -> ChatResult:
        c = self.client
        number = len(c.calls)
        c.calls.append(self)
        result = self.result
        result.started = c.clock()
        result.response_at = result.started
        await asyncio.sleep(0)
        fault = c.faults.get(number)
        if fault is not None and fault[0] == "before":
            raise fault[1]
        prompt = _words(self.messages) + c.template
        cached = c.cached(self.messages, prompt)
        details = None if cached is None else PromptTokensDetails(cached_tokens=cached)
        start = result.started
        call = self._call(number)
        tokens = self.max_tokens

        def add(offset: float, delta: Delta | None, tokens: int, finish: str | None = None) -> None:
            choices = () if delta is None else (Choice(index=0, delta=delta, finish_reason=finish),)
            usage = Usage(prompt, tokens, prompt + tokens, details)
            result.chunks.append(ChatChunk(choices=choices, usage=usage, arrival=start + offset))

        add(c.ttft, Delta(role="assistant", content=""), 0)
        for i in range(3, self.max_tokens):  # tokens 0-2 are hidden harmony headers
            last = i == self.max_tokens - 1
            delta = Delta(reasoning="r") if i < self.max_tokens // 2 else Delta(content="c")
            if call is not None and i >= self.max_tokens // 2:
                name, arguments = call
                tool = ToolCallDelta(
                    index=0,
                    id=f"call_{number}",
                    type="function",
                    function=FunctionDelta(name=name, arguments=arguments),
                )
                tokens = i + 1
                add(c.ttft + i * c.itl, Delta(tool_calls=(tool,)), tokens, "tool_calls")
                break
            add(c.ttft + i * c.itl, delta, i + 1, "length" if last else None)
            if fault is not None and fault[0] == "after" and i == 5:
                raise fault[1]
        add(c.ttft + (self.max_tokens - 1) * c.itl, None, tokens)
        result.done = True
        return result


def _event(tag: str, **fields: Any) -> Any:
    return cast(Any, EVENT_TYPES[tag])(**fields)


class ScriptedResponseStream:
    """A Responses stream that 'receives' gpt-oss's events at scripted offsets: created, reasoning
    deltas, then answer deltas (or one function call), then completed with the usage."""

    def __init__(
        self,
        client: ScriptedClient,
        input: Sequence[Mapping[str, Any]],
        max_tokens: int,
        extra: Mapping[str, Any] | None,
        tools: Sequence[Mapping[str, Any]] | None,
        headers: Mapping[str, str] | None,
    ) -> None:
        self.client = client
        self.messages = input
        self.max_tokens = max_tokens
        self.extra = extra
        self.tools = tools
        self.headers = dict(headers or {})
        self.result = ResponseResult()

    async def __aenter__(self) -> ScriptedResponseStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def collect(self) -> ResponseResult:
        c = self.client
        number = len(c.calls)
        c.calls.append(self)
        result = self.result
        result.started = result.response_at = c.clock()
        await asyncio.sleep(0)
        fault = c.faults.get(number)
        if fault is not None and fault[0] == "before":
            raise fault[1]
        prompt = _words(self.messages) + c.template
        cached = c.cached(self.messages, prompt)
        tool_choice = (self.extra or {}).get("tool_choice")
        call = scripted_call(self.tools, tool_choice, self.messages[-1] if self.messages else {})
        if call is not None and number in c.tool_faults:
            call = BREAKS[c.tool_faults[number]](*call)
        start = result.started
        events = result.chunks
        events.append(
            _event(
                "response.created",
                response=ResponseObject(id=f"resp_{number}"),
                arrival=start + c.ttft / 2,
            )
        )
        tokens = self.max_tokens
        for i in range(3, self.max_tokens):
            at = start + c.ttft + i * c.itl
            if i < self.max_tokens // 2:
                events.append(ReasoningTextDelta(item_id="rs", delta="r", arrival=at))
            elif call is not None:
                name, arguments = call
                item = OutputItem(
                    type="function_call", id="fc", name=name, call_id=f"call_{number}"
                )
                events.append(_event("response.output_item.added", item=item, arrival=at))
                events.append(FunctionCallArgumentsDelta(item_id="fc", delta=arguments, arrival=at))
                tokens = i + 1
                break
            else:
                events.append(OutputTextDelta(item_id="msg", delta="c", arrival=at))
            if fault is not None and fault[0] == "after" and i == 5:
                raise fault[1]
        usage = ResponseUsage(
            input_tokens=prompt,
            output_tokens=tokens,
            total_tokens=prompt + tokens,
            input_tokens_details=None
            if cached is None
            else InputTokensDetails(cached_tokens=cached),
        )
        done = ResponseObject(id=f"resp_{number}", status="completed", usage=usage)
        end = start + c.ttft + (self.max_tokens - 1) * c.itl
        events.append(_event("response.completed", response=done, arrival=end))
        result.done = True
        return result


class ScriptedClient:
    """Stands in for the stream Client: every call is recorded, faults by call number.

    ``metrics`` is what ``/metrics`` answers, one text per scrape (the last repeats); an
    exception in it is raised instead.
    """

    base_url = "http://scripted"

    def __init__(self, ttft: float = 0.2, itl: float = 0.01, template: int = 70) -> None:
        self.ttft, self.itl, self.template = ttft, itl, template
        self.calls: list[ScriptedStream | ScriptedResponseStream] = []
        self.faults: dict[int, tuple[str, BaseException]] = {}
        self.metrics: list[str | BaseException] = []
        self.scrapes = 0
        self.now = 0.0
        self.tool_faults: dict[int, str] = {}  # call number -> a BREAKS name
        self.report_cached = False  # usage says the history before the last message was cached

    def cached(self, messages: Sequence[Mapping[str, Any]], prompt: int) -> int | None:
        """Cached prompt tokens for ``messages``: all but the last message's words (or None)."""
        if not self.report_cached:
            return None
        return min(prompt, _words(messages[:-1]) + self.template) if len(messages) > 2 else 0

    def clock(self) -> float:
        self.now += 0.001
        return self.now

    async def wait_healthy(
        self, *, timeout_s: float, on_progress: Callable[[HealthProgress], None] | None = None
    ) -> None:
        return None

    def stream_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        reasoning_effort: str | None,
        max_tokens: int,
        continuous_usage: bool,
        extra: Mapping[str, Any] | None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ScriptedStream:
        assert continuous_usage
        return ScriptedStream(self, messages, max_tokens, extra, tools, headers)

    def stream_response(
        self,
        input: str | Sequence[Mapping[str, Any]],
        *,
        instructions: str | None = None,
        reasoning_effort: str | None = None,
        tools: Sequence[Mapping[str, Any]] | None = None,
        max_output_tokens: int | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ScriptedResponseStream:
        items = [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
        if instructions is not None:
            items.insert(0, {"role": "system", "content": instructions})
        return ScriptedResponseStream(self, items, max_output_tokens or 16, extra, tools, headers)

    async def fetch_metrics(self, *, timeout_s: float = 10.0) -> str:
        answer = self.metrics[min(self.scrapes, len(self.metrics) - 1)]
        self.scrapes += 1
        if isinstance(answer, BaseException):
            raise answer
        return answer


def settings(**kwargs: Any) -> BenchSettings:
    """Small settings for a scripted run: one level of 2, 6 requests, no warm-up or scrapes."""
    base: dict[str, Any] = {
        "url": "http://scripted",
        "levels": (Level(2),),
        "requests": 6,
        "warmup": 0,
        "input_tokens": 300,
        "output_tokens": 40,
        "scrape_metrics": False,
    }
    return BenchSettings(**{**base, **kwargs})


def no_cpu() -> float:
    """A CPU clock that never moves: the scripted runs are never client-bound."""
    return 0.0


async def run(
    client: ScriptedClient,
    *,
    budgets: Budgets | None = None,
    cpu_clock: Callable[[], float] = no_cpu,
    **kwargs: Any,
) -> BenchRun:
    """A run of :func:`settings` (overridden by ``kwargs``) on the scripted client."""
    return await run_benchmark(
        settings(**kwargs), client=client, clock=client.clock, cpu_clock=cpu_clock, budgets=budgets
    )
