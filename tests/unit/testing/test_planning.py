"""Planning: API-neutral requests give repeatable plans, timed and cut as vLLM would."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal.testing._planning import GenerationRequest, Planner
from gptoss_modal.testing._validation import Rejection
from gptoss_modal.testing.mock_server import MockConfig

HI = ({"role": "user", "content": "hi"},)


def test_the_same_request_plans_the_same_tokens_and_times() -> None:
    """Two identical requests get the same generation (built once) and the same step times."""
    planner = Planner(MockConfig(ttft_ms=50.0, itl_ms=5.0, jitter_ms=1.0))
    first, second = (planner.plan(GenerationRequest(HI)) for _ in range(2))
    assert first.generation is second.generation
    assert first.times == second.times


@given(st.integers(min_value=1, max_value=200))
def test_max_tokens_caps_the_generation(max_tokens: int) -> None:
    """A request's cap bounds the tokens generated, and the steps yield exactly those tokens."""
    plan = Planner(MockConfig()).plan(GenerationRequest(HI, max_tokens=max_tokens))
    assert len(plan.generation.tokens) <= max_tokens
    assert sum(len(t) for t in plan.step_tokens()) == len(plan.generation.tokens)


def test_ignore_eos_runs_to_the_cap() -> None:
    """``ignore_eos`` makes the generation exactly ``max_tokens`` long, finishing by length."""
    plan = Planner(MockConfig()).plan(GenerationRequest(HI, max_tokens=300, ignore_eos=True))
    assert len(plan.generation.tokens) == 300
    assert plan.generation.finish_reason == "length"


def test_the_first_step_is_ready_at_the_ttft() -> None:
    """Without jitter the first step is due at ``ttft_ms`` and each later one ``itl_ms`` on."""
    plan = Planner(MockConfig(ttft_ms=100.0, itl_ms=10.0)).plan(GenerationRequest(HI))
    assert plan.times[0] == pytest.approx(0.1)
    assert plan.times[1] - plan.times[0] == pytest.approx(0.01)


def test_a_prompt_with_no_room_is_refused() -> None:
    """A prompt filling the context is refused with vLLM's 400 before anything is generated."""
    planner = Planner(MockConfig(max_model_len=10))
    with pytest.raises(Rejection) as info:
        planner.plan(GenerationRequest(HI))
    assert info.value.status == 400
    assert b"maximum context length is 10 tokens" in info.value.body


def test_kept_plans_are_found_by_request_id() -> None:
    """A kept plan comes back under its id; an unknown id is a KeyError."""
    planner = Planner(MockConfig())
    plan = planner.plan(GenerationRequest(HI))
    planner.keep("r1", plan)
    assert planner.kept("r1") is plan
    with pytest.raises(KeyError):
        planner.kept("r2")
