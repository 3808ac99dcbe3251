"""What a ``harmony-error`` tool fault does to a Responses request, per vLLM version.

The chat endpoint's version of this fault is :mod:`._tool_faults`'s. The Responses serving
code meets openai_harmony's ``HarmonyError`` (a call header it cannot read) differently:

- 0.13.0 (``entrypoints/context.py``): ``StreamingHarmonyContext.append_output`` calls
  ``parser.process(tok)`` unguarded, and ``responses_stream_generator`` catches only
  ``GenerationError``, so the exception leaves the SSE generator after the events already
  written and Starlette's ``StreamingResponse`` closes the connection: no error event, no
  terminal event, a truncated stream. Non-streamed, ``create_responses`` turns it into
  ``create_error_response(str(e))``: HTTP 400 ``BadRequestError``.
- 0.33.0 (``vllm/parser/harmony.py``, ``HarmonyParser.process_chunk``): every token the
  parser rejects is skipped (``except HarmonyError: continue``), so the call's tokens are
  lost and the response completes without the call, streamed or not. The mock models this as
  the generation cut where the call's message begins (the reasoning before it kept); the
  output tokens still count every token generated.
"""

from __future__ import annotations

import dataclasses

from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing import _responses_wire as rw
from gptoss_modal.testing import _tool_faults as tool_faults
from gptoss_modal.testing._planning import Plan

__all__ = [
    "HARMONY_ERROR",
    "call_start",
    "harmony_error_reply",
    "streamed_cut_at",
    "without_the_call",
]

HARMONY_ERROR = "harmony-error"
_CALL_ITEM = b'"type":"function_call"'


def call_start(generation: engine.Generation) -> int:
    """The index of the first token of the function call's message (the token after the
    previous message's end), or the generation's length when it calls no function."""
    parser = engine.HarmonyState(generation.text_of)
    boundary = 0
    for index, token in enumerate(generation.tokens):
        was_content = parser.state == "content"
        parser.process(token)
        if was_content and parser.state != "content":
            boundary = index + 1
        if (parser.recipient or "").startswith("functions."):
            return boundary
    return len(generation.tokens)


def without_the_call(plan: Plan) -> Plan:
    """0.33.0's outcome: the plan with its generation cut before the call, same steps and
    times (the engine generated every token; the parser skipped the call's)."""
    gen = plan.generation
    cut = dataclasses.replace(
        gen,
        tokens=gen.tokens[: call_start(gen)],
        finish_reason="stop",
        tool_name=None,
        tool_arguments=None,
        content="",
        tool_fault=None,
        cache={},
    )
    return dataclasses.replace(plan, generation=cut)


def streamed_cut_at(events: list[bytes]) -> int:
    """0.13.0's stream stops before the call's first event (its ``output_item.added``, sent on
    the call's ``<|message|>`` token, after the header the parser rejects)."""
    return next((i for i, e in enumerate(events) if _CALL_ITEM in e), max(2, len(events) - 1))


def harmony_error_reply(generation: engine.Generation) -> tuple[int, bytes]:
    """0.13.0's non-streamed reply: ``create_error_response(str(e))``, a 400."""
    message = tool_faults.harmony_error_message(generation.tool_name)
    return 400, rw.error_body(message, "BadRequestError", 400, None)
