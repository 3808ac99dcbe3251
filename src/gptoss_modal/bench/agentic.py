"""The agentic workload: each virtual user runs seeded, multi-turn conversations with tool calls.

An agent loop sends the whole history every turn, so prompts grow and prefix caching pays off;
this workload does the same. A *turn* is one request. A conversation opens with a system
message and a user question that needs one of :data:`TOOLS` (weather, web search, calculator,
time, currency); the reply's tool calls are appended as the assistant message with its
``tool_calls``, and each call's result, synthesised from its arguments (:func:`synthesise`),
as a ``tool`` message; the next turn asks the model to go on (``tool_choice: "auto"``). A
reply without a call is appended as the assistant's answer, and the next turn is a new
question. For the Responses API the same history becomes input items
(:func:`response_input`: ``function_call`` and ``function_call_output`` items).

Everything is seeded by the run's seed, the level and the user, so a run is reproducible; a
failed turn leaves the history as it was and the next turn asks a new question.

:class:`AgenticLoad` is a :class:`~gptoss_modal.bench.loads.LoadPattern`: ``concurrency``
users, each running conversations of ``turns`` turns back to back, until the level's request
count or duration is reached; :class:`AgenticWorkload` tells the driver what request ``i`` is
and hears how it went.
"""

from __future__ import annotations

import json
import random
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from gptoss_modal.bench.loads import Send
from gptoss_modal.bench.tool_validity import ToolSchemas
from gptoss_modal.bench.workload import BenchRequest, Sent
from gptoss_modal.stream.accumulator import ChatResult, ToolCall
from gptoss_modal.stream.responses_accumulator import ResponseResult

__all__ = [
    "SESSION_HEADER",
    "TOOLS",
    "AgenticLoad",
    "AgenticWorkload",
    "Conversation",
    "ToolChoice",
    "response_input",
    "synthesise",
]

SESSION_HEADER: Final = "Modal-Session-ID"  # Modal routes one id's requests to one replica
ToolChoice = Literal["auto", "named"]
SYSTEM_PROMPT: Final = (
    "You are a helpful assistant with tools. Call a tool when the question needs one, then "
    "answer from its result in one or two sentences."
)


def _tool(name: str, description: str, properties: dict[str, Any], required: list[str]) -> Any:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": required,
                "additionalProperties": False,
            },
        },
    }


_STRING: Final = {"type": "string"}
# The tools every conversation offers (chat completions' shape; the Responses request builder
# flattens them).
TOOLS: Final[tuple[dict[str, Any], ...]] = (
    _tool(
        "get_weather",
        "The current weather in a city.",
        {"city": _STRING, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        ["city"],
    ),
    _tool(
        "web_search",
        "Search the web; returns the top results' titles and snippets.",
        {"query": _STRING, "max_results": {"type": "integer", "minimum": 1, "maximum": 10}},
        ["query"],
    ),
    _tool(
        "calculator",
        "Evaluate an arithmetic expression.",
        {"expression": _STRING},
        ["expression"],
    ),
    _tool("get_time", "The local time in a city.", {"city": _STRING}, ["city"]),
    _tool(
        "convert_currency",
        "Convert an amount between currencies.",
        {"amount": {"type": "number"}, "source": _STRING, "target": _STRING},
        ["amount", "source", "target"],
    ),
)
SCHEMAS: Final = ToolSchemas(TOOLS)

_CITIES: Final = ("Paris", "Tokyo", "Lagos", "Lima", "Oslo", "Cairo", "Denver", "Hanoi", "Perth")
_TOPICS: Final = ("Rust", "Kubernetes", "Photosynthesis", "Jazz", "Volcanoes", "Chess", "Tides")
_CURRENCIES: Final = ("EUR", "USD", "JPY", "GBP", "INR")
# One question per tool; {c}, {t}, {a}, {b}, {x}, {y} are filled from the user's seeded RNG. The
# tool is named (agents' prompts do), and the argument word is capitalised and not first, so a
# mock that calls "the tool the prompt names" fills it in.
_QUESTIONS: Final = {
    "get_weather": "Use the get_weather tool: what is the weather in {c} today?",
    "web_search": "Use the web_search tool: find recent news about {t}.",
    "calculator": "Use the calculator tool: what is {x} times {y} plus Seven?",
    "get_time": "Use the get_time tool: what time is it now in {c}?",
    "convert_currency": "Use the convert_currency tool: how much is {x} {a} in {b}?",
}


def _tool_name(tool: Mapping[str, Any]) -> str:
    return str(tool["function"]["name"])


def _stable(text: str) -> int:
    return zlib.crc32(text.encode())


def synthesise(name: str, arguments: str) -> str:
    """A tool's result, made from its arguments alone (the same arguments, the same result).

    Never names a tool, so the result cannot be mistaken for a request to call one.
    """
    try:
        args = json.loads(arguments)
    except ValueError:
        return json.dumps({"error": "the arguments were not JSON"})
    if not isinstance(args, dict) or name not in SCHEMAS.names:
        return json.dumps({"error": "no such function, or arguments that are not an object"})
    h = _stable(f"{name}:{arguments}")
    results: dict[str, Any] = {
        "get_weather": {"temperature": h % 35, "conditions": ("sunny", "rain", "cloudy")[h % 3]},
        "web_search": {
            "results": [
                {"title": f"Result {i + 1}", "snippet": f"Snippet {h % 997}"} for i in (0, 1)
            ]
        },
        "calculator": {"value": h % 10_000},
        "get_time": {"time": f"{h % 24:02d}:{h % 60:02d}"},
        "convert_currency": {"amount": round((h % 100_000) / 100, 2)},
    }
    return json.dumps({"arguments": args, **results[name]}, sort_keys=True)


def response_input(
    messages: Sequence[Mapping[str, Any]],
) -> tuple[str | None, list[dict[str, Any]]]:
    """A chat history as the Responses API's ``instructions`` and input items."""
    instructions: str | None = None
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "system":
            instructions = str(message.get("content") or "")
        elif role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message["tool_call_id"],
                    "output": message["content"],
                }
            )
        else:
            if message.get("content"):
                items.append({"role": role, "content": message["content"]})
            for call in message.get("tool_calls") or ():
                function = call["function"]
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": function["name"],
                        "arguments": function["arguments"],
                    }
                )
    return instructions, items


def _calls_and_content(sent: Sent) -> tuple[tuple[ToolCall, ...], str, str | None]:
    """The reply's tool calls, content and finish reason, from either API's result."""
    result = sent.result
    if isinstance(result, ResponseResult):
        output = result.output
        cut = "length" if output.incomplete_reason == "max_output_tokens" else None
        return output.function_calls, output.text, cut or output.status
    assert isinstance(result, ChatResult)
    message = result.message
    return message.tool_calls, message.content, message.finish_reason


@dataclass
class Conversation:
    """One user's conversation: the history so far and what the next turn sends."""

    key: str  # "level/user/conversation": the seed's tail and the session's name
    seed: str
    tool_choice: ToolChoice = "auto"
    messages: list[dict[str, Any]] = field(default_factory=list)
    turn: int = 0
    follow_up: bool = False  # the last turn's tool results wait for the model
    _rng: random.Random = field(init=False, repr=False)
    _asked: str = field(init=False, default="")  # the tool the open question names

    def __post_init__(self) -> None:
        self._rng = random.Random(f"{self.seed}:{self.key}")  # noqa: S311 - a seeded workload
        self.messages = [{"role": "system", "content": SYSTEM_PROMPT}]
        self._ask()

    def _ask(self) -> None:
        rng = self._rng
        name = _tool_name(rng.choice(TOOLS))
        question = _QUESTIONS[name].format(
            c=rng.choice(_CITIES),
            t=rng.choice(_TOPICS),
            x=rng.randint(2, 999),
            y=rng.randint(2, 99),
            a=rng.choice(_CURRENCIES),
            b=rng.choice(_CURRENCIES),
        )
        self.messages.append({"role": "user", "content": question})
        self._asked = name
        self.follow_up = False

    def request(self) -> BenchRequest:
        """The next turn: the whole history, the tools, and the tool choice."""
        choice: Any = "auto"
        if not self.follow_up and self.tool_choice == "named":
            choice = {"type": "function", "function": {"name": self._asked}}
        return BenchRequest(
            messages=tuple(dict(m) for m in self.messages),
            tools=TOOLS,
            tool_choice=choice,
            turn=self.turn,
            conversation=self.key,
            expects_call=not self.follow_up,
        )

    def absorb(self, sent: Sent) -> None:
        """Append the turn's reply (and its tool results) to the history; next turn."""
        self.turn += 1
        if sent.error is not None:
            self._ask()  # the agent gives up on the question and asks another
            return
        calls, content, _ = _calls_and_content(sent)
        if not calls:
            self.messages.append({"role": "assistant", "content": content})
            self._ask()
            return
        ids = [call.id or f"call_{self.turn}_{call.index}" for call in calls]
        self.messages.append(
            {
                "role": "assistant",
                "content": content or None,
                "tool_calls": [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": call.arguments},
                    }
                    for call_id, call in zip(ids, calls, strict=True)
                ],
            }
        )
        for call_id, call in zip(ids, calls, strict=True):
            self.messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": synthesise(call.name, call.arguments),
                }
            )
        self.follow_up = True


class AgenticWorkload:
    """What each request of an agentic level is: the conversation it belongs to and its turn.

    ``session_ids`` adds ``Modal-Session-ID: <run>-<level>-<user>`` to every request of a user.
    """

    def __init__(
        self,
        *,
        seed: int,
        level: int,
        tool_choice: ToolChoice = "auto",
        session_ids: bool = False,
        run_id: str = "run",
    ) -> None:
        self.seed = str(seed)
        self.level = level
        self.tool_choice: ToolChoice = tool_choice
        self.session_ids = session_ids
        self.run_id = run_id
        self._by_index: dict[int, tuple[int, Conversation]] = {}
        self._started = 0

    def start(self, user: int) -> Conversation:
        """A new conversation for ``user`` (each one seeded by its level, user and number)."""
        self._started += 1
        return Conversation(
            key=f"{self.level}/{user}/{self._started}",
            seed=self.seed,
            tool_choice=self.tool_choice,
        )

    def bind(self, index: int, user: int, conversation: Conversation) -> None:
        """Request ``index`` is ``conversation``'s next turn, sent by ``user``."""
        self._by_index[index] = (user, conversation)

    def request(self, index: int) -> BenchRequest:
        """What request ``index`` sends."""
        user, conversation = self._by_index[index]
        request = conversation.request()
        if self.session_ids:
            session = f"{self.run_id}-{self.level}-{user}"
            request = BenchRequest(
                messages=request.messages,
                tools=request.tools,
                tool_choice=request.tool_choice,
                turn=request.turn,
                conversation=request.conversation,
                expects_call=request.expects_call,
                headers={SESSION_HEADER: session},
            )
        return request

    def finished(self, index: int, sent: Sent) -> None:
        """Request ``index`` ended: its conversation moves on (and forgets the index)."""
        _, conversation = self._by_index.pop(index)
        conversation.absorb(sent)


@dataclass(frozen=True, slots=True)
class AgenticLoad:
    """``concurrency`` virtual users, each running ``turns``-turn conversations back to back,
    until ``total`` requests were sent or ``duration_s`` passed (a closed loop, per user)."""

    workload: AgenticWorkload
    concurrency: int
    turns: int
    total: int | None
    duration_s: float | None = None

    async def run(self, send: Send, *, start: float, clock: Callable[[], float]) -> None:
        """Run the users; return when every request they started has finished."""
        import asyncio

        deadline = None if self.duration_s is None else start + self.duration_s
        next_index = 0

        def more() -> bool:
            return (self.total is None or next_index < self.total) and (
                deadline is None or clock() < deadline
            )

        async def user(number: int) -> None:
            nonlocal next_index
            while more():
                conversation = self.workload.start(number)
                for _ in range(self.turns):
                    if not more():
                        return
                    index = next_index
                    next_index += 1
                    self.workload.bind(index, number, conversation)
                    await send(index, None)

        await asyncio.gather(*(user(u) for u in range(self.concurrency)))
