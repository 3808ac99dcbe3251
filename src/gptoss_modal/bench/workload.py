"""What a level sends, and on what: the client the driver needs (:class:`BenchClient`, whose
streams are :class:`BenchStream`), one measured request (:class:`BenchRequest`) and how it
ended (:class:`Sent`), and the :class:`Workload` that says what request ``i`` of a level is
(:class:`ChatWorkload` for single-turn prompts; the agentic one is in
:mod:`gptoss_modal.bench.agentic`). Types only: the driver sends, the workloads decide.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from gptoss_modal.bench.prompts import PromptSet
from gptoss_modal.stream.accumulator import ChatResult
from gptoss_modal.stream.responses_accumulator import ResponseResult

if TYPE_CHECKING:
    from gptoss_modal.stream.client import HealthProgress

__all__ = [
    "Api",
    "BenchClient",
    "BenchRequest",
    "BenchResult",
    "BenchStream",
    "ChatWorkload",
    "Sent",
    "Workload",
]

Api = Literal["chat", "responses"]
# One request's result: a chat completion's chunks or a Responses stream's events.
BenchResult = ChatResult | ResponseResult

# --- what the driver needs of a client ---------------------------------------------------------


class BenchStream(Protocol):
    """One streamed request, as :class:`gptoss_modal.stream.client.ChatStream` (and its
    Responses twin) is."""

    @property
    def result(self) -> BenchResult:
        """Everything received so far (filled in while :meth:`collect` runs)."""

    async def __aenter__(self) -> object:
        """Nothing to do on entry; the request is sent by :meth:`collect`."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Release the connection."""

    async def collect(self) -> BenchResult:
        """Read the stream to its end (``[DONE]``, or the terminal Responses event)."""


class BenchClient(Protocol):
    """What the benchmark uses of :class:`gptoss_modal.stream.client.Client`."""

    @property
    def base_url(self) -> str:
        """The server's root URL."""

    async def wait_healthy(
        self,
        *,
        timeout_s: float,
        on_progress: Callable[[HealthProgress], None] | None = None,
    ) -> object:
        """Return once ``/health`` answers 200; raise a :class:`GptossModalError` if never."""

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
    ) -> BenchStream:
        """Start a streamed chat completion."""

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
    ) -> BenchStream:
        """Start a streamed Responses request (``--api responses``)."""

    async def fetch_metrics(self, *, timeout_s: float = ...) -> str:
        """``/metrics`` as text; a :class:`GptossModalError` when it cannot be read."""


# --- one request -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    """A finished request: what it received, and if it failed, the error and when."""

    result: BenchResult
    error: BaseException | None = None
    failed_at: float | None = None


@dataclass(frozen=True, slots=True)
class BenchRequest:
    """What one measured request sends: chat messages (the Responses API gets them as input
    items), and for an agentic turn its tools, tool choice, headers (``Modal-Session-ID``),
    turn number, conversation, and whether the turn asks for a tool call."""

    messages: Sequence[Mapping[str, Any]]
    tools: Sequence[Mapping[str, Any]] | None = None
    tool_choice: Any = None
    turn: int | None = None
    conversation: str | None = None
    expects_call: bool = False
    headers: Mapping[str, str] | None = None


class Workload(Protocol):
    """What request ``index`` of a level sends, and what happens once it finished."""

    def request(self, index: int) -> BenchRequest:
        """The request with this index."""

    def finished(self, index: int, sent: Sent) -> None:
        """Request ``index`` has finished (or failed)."""


@dataclass(frozen=True, slots=True)
class ChatWorkload:
    """Single-turn requests: level ``number``'s prompt ``index`` of the prompt set."""

    prompts: PromptSet
    number: int

    def request(self, index: int) -> BenchRequest:
        """The prompt with this index."""
        return BenchRequest(self.prompts.messages(self.number, index))

    def finished(self, index: int, sent: Sent) -> None:
        """Nothing follows from a single-turn request."""
