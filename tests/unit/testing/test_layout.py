"""Chat stream layout: events in time order, ending in [DONE] with every step done."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gptoss_modal.testing import _wire as wire
from gptoss_modal.testing._layout import (
    ChatStreamOptions,
    StreamEvents,
    StreamSettings,
    chat_stream_events,
)
from gptoss_modal.testing._planning import GenerationRequest, Planner
from gptoss_modal.testing.mock_server import MockConfig

HI = ({"role": "user", "content": "hi"},)


def _events(
    interval: int, options: ChatStreamOptions, request_id: str = "chatcmpl-x", k: int = 0
) -> StreamEvents:
    config = MockConfig(ttft_ms=10.0, itl_ms=1.0, num_speculative_tokens=k)
    plan = Planner(config).plan(GenerationRequest(HI, max_tokens=120))
    return chat_stream_events(
        plan,
        request_id=request_id,
        created=1,
        model="llm",
        options=options,
        settings=StreamSettings(stream_interval=interval),
    )


@settings(max_examples=30)
@given(
    st.integers(min_value=1, max_value=9),
    st.booleans(),
    st.booleans(),
    st.integers(min_value=0, max_value=3),
)
def test_events_are_timed_in_order_and_end_with_every_step_done(
    interval: int, usage: bool, reasoning: bool, k: int
) -> None:
    """Times never go back, steps done never go back, and [DONE] is last with all steps done."""
    stream = _events(interval, ChatStreamOptions(usage, False, reasoning), k=k)
    assert stream.events[-1] == wire.DONE
    assert stream.times == sorted(stream.times)
    assert stream.steps_done == sorted(stream.steps_done)
    assert len(stream.events) == len(stream.times) == len(stream.steps_done)
    assert stream.events[0].startswith(b'data: {"id":"chatcmpl-x"')


def test_usage_adds_one_event_before_done() -> None:
    """``include_usage`` adds exactly the usage chunk (``choices: []``) before [DONE]."""
    plain = _events(1, ChatStreamOptions())
    with_usage = _events(1, ChatStreamOptions(include_usage=True))
    assert len(with_usage.events) == len(plain.events) + 1
    assert b'"choices":[],"usage"' in with_usage.events[-2]


def test_a_second_request_differs_only_in_its_head() -> None:
    """Two requests of one generation share the bodies; only the id in each head differs."""
    first = _events(3, ChatStreamOptions(), "chatcmpl-a")
    second = _events(3, ChatStreamOptions(), "chatcmpl-b")
    renamed = [e.replace(b"chatcmpl-a", b"chatcmpl-b") for e in first.events]
    assert renamed == second.events
