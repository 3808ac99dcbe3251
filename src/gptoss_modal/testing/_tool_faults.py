"""Tool-call faults at known rates: which tool call is broken, and how.

The broken tool calls gpt-oss deployments report most, each a ``MockConfig`` rate in [0, 1]
(field: kind, then what the client receives):

- ``tool_name_leak_rate``: ``name-leak``, the call's name is ``NAME<|channel|>commentary``
  (vllm-project/vllm#32587).
- ``tool_content_leak_rate``: ``content-leak``, no call; the content holds the call with its
  markup, ``to=functions.NAME <|constrain|>json{...}``.
- ``tool_args_length_rate``: ``args-length``, max_tokens cuts the output inside the arguments:
  ``finish_reason: "length"`` (vllm#30204; 0.13.0's stream then ends in its "list index out of
  range" error, vllm#37937, and its non-streamed reply drops the unfinished call).
- ``tool_args_short_rate``: ``args-short``, the call ends early: cut JSON arguments, finish
  ``"tool_calls"``.
- ``harmony_error_rate``: ``harmony-error``, the stream ends in vLLM's in-stream error for an
  ``openai_harmony.HarmonyError``; a non-streamed request gets vLLM's 500 (vllm#46464, #57099).

Exact counts, not draws: the faults apply to tool-call turns only (a turn the mock answers with
a tool call), numbered in arrival order across the server. Kind ``i`` is due at call ``k`` when
``floor(k * rate_i)`` steps up (a Bresenham sequence over the rate as an exact fraction, its
denominator at most 10,000), so after ``N`` tool calls exactly ``floor(N * rate_i)`` have been
due. A call gets at most one fault: when two are due at once,
the first in the table's order is applied and the other waits for the next call (so with several
kinds, a kind's count lags its quota by at most the number of kinds while calls keep coming).
:attr:`ToolFaultSchedule.applied` counts what was injected, for a test to compare exactly.
The rates must sum to at most 1. Which calls are hit does not depend on the seed. A harmony
error strikes where the parser meets the call's header: the stream stops where the call's first
chunk would be.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing import _wire_v033 as wire033

__all__ = [
    "TOOL_FAULT_FIELDS",
    "ToolFaultSchedule",
    "check_rates",
    "harmony_error_message",
    "harmony_error_reply",
    "harmony_error_stream_event",
]

TOOL_FAULT_FIELDS = {
    "tool_name_leak_rate": "name-leak",
    "tool_content_leak_rate": "content-leak",
    "tool_args_length_rate": "args-length",
    "tool_args_short_rate": "args-short",
    "harmony_error_rate": "harmony-error",
}
"""Each ``MockConfig`` rate field and the fault kind it injects, in priority order."""


def check_rates(rates: dict[str, float]) -> None:
    """Each rate in [0, 1], and their sum at most 1 (a call gets one fault at most)."""
    for name, rate in rates.items():
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(name, rate, "a rate within [0, 1]")
    total = sum(rates.values())
    if total > 1.0 + 1e-12:
        fields = " + ".join(rates)
        raise ConfigError(fields, round(total, 6), "rates summing to at most 1")


@dataclass
class _Quota:
    kind: str
    rate: Fraction  # exact, so 0.29 over 100 calls owes 29 (float 0.29 * 100 is 28.99...)
    due: int = 0  # owed to the calls so far (floor(calls * rate))
    applied: int = 0


class ToolFaultSchedule:
    """Which fault (if any) each tool call of one server gets, in arrival order."""

    def __init__(self, rates: dict[str, float]) -> None:
        check_rates(rates)
        self._quotas = [
            _Quota(TOOL_FAULT_FIELDS[name], Fraction(rate).limit_denominator(10_000))
            for name, rate in rates.items()
            if rate > 0
        ]
        self.calls = 0
        self.applied: Counter[str] = Counter()
        """Faults injected so far, by kind (``name-leak``, ...)."""

    def next_call(self) -> str | None:
        """The fault of the next tool call (None: the call is served whole)."""
        self.calls += 1
        chosen: _Quota | None = None
        for quota in self._quotas:
            quota.due = int(self.calls * quota.rate)
            if chosen is None and quota.due > quota.applied:
                chosen = quota
        if chosen is None:
            return None
        chosen.applied += 1
        self.applied[chosen.kind] += 1
        return chosen.kind


def harmony_error_message(tool_name: str | None) -> str:
    """``str(HarmonyError)`` as openai_harmony's parser words it for a header it cannot read."""
    return f'unexpected tokens remaining in message header: Some("to=functions.{tool_name}")'


def harmony_error_stream_event(vllm_version: str, message: str) -> bytes:
    """The in-stream error event each version's chat stream writes when the harmony parser
    raises: 0.13.0 ``create_streaming_error_response(str(e))`` (BadRequestError 400,
    ``json.dumps``); 0.33.0 ``create_error_response(e)`` (a RuntimeError: InternalServerError
    500, compact). ``data: [DONE]`` follows in both."""
    if vllm_version == "0.13.0":
        return wire.streaming_error(message, "BadRequestError", 400)
    return wire033.streaming_error(message, "InternalServerError", 500)


def harmony_error_reply(vllm_version: str, message: str) -> tuple[int, bytes]:
    """The status and body of a non-streamed request whose output the harmony parser rejects:
    0.13.0's route turns the exception into ``HTTPException(500)`` (type "Internal Server
    Error"); 0.33.0's exception handler into ``create_error_response(e)``."""
    err_type = "Internal Server Error" if vllm_version == "0.13.0" else "InternalServerError"
    return 500, wire.error_body(message, err_type, 500)
