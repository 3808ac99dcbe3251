"""The mock's pure engine: generation plan, engine steps, stream-interval batching, deltas."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal.testing import _engine as engine

MESSAGES = [{"role": "user", "content": "What is the weather in Paris today?"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def plan(**overrides: object) -> engine.Generation:
    """A generation plan with small defaults."""
    kwargs: dict[str, object] = {
        "messages": MESSAGES,
        "seed": 7,
        "reasoning_effort": "low",
        "content_tokens": 12,
        "max_tokens": 10_000,
        "ignore_eos": False,
    }
    kwargs.update(overrides)
    return engine.plan_generation(**kwargs)  # type: ignore[arg-type]


def reference_batches(step_tokens: list[int], interval: int) -> list[int]:
    """The stream-interval rule written the slow way: token by token."""
    sizes: list[int] = []
    unsent = 0
    for i, n in enumerate(step_tokens):
        unsent += n
        first = not sizes
        if interval == 1 or first or unsent >= interval or i == len(step_tokens) - 1:
            sizes.append(unsent)
            unsent = 0
    return sizes


@given(
    st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=200),
    st.integers(min_value=1, max_value=40),
)
def test_batches_follow_vllms_stream_interval_rule(steps: list[int], interval: int) -> None:
    """Outputs carry every token once, the first at once, then >= N each, the rest at the end."""
    batches = engine.batch_outputs(steps, interval)
    sizes = [n for _, n in batches]
    assert sum(sizes) == sum(steps)
    assert sizes == reference_batches(steps, interval)
    assert batches[0] == (0, steps[0])
    assert batches[-1][0] == len(steps) - 1
    if interval > 1:
        assert all(n >= interval for n in sizes[1:-1])


@given(st.integers(min_value=1, max_value=500), st.integers(min_value=2, max_value=30))
def test_one_token_steps_give_ceil_batches(tokens: int, interval: int) -> None:
    """Without speculative decoding: 1 + ceil((T - 1) / N) outputs, all of N but the last."""
    sizes = [n for _, n in engine.batch_outputs([1] * tokens, interval)]
    expected = 1 + -(-(tokens - 1) // interval)
    assert len(sizes) == expected
    assert sizes[0] == 1
    assert all(n == interval for n in sizes[1:-1])


def test_interval_one_sends_every_step() -> None:
    """With --stream-interval 1 each engine step is one output, multi-token steps included."""
    assert engine.batch_outputs([1, 3, 2], 1) == [(0, 1), (1, 3), (2, 2)]


@given(
    st.integers(min_value=1, max_value=8),
    st.fractions(min_value=0, max_value=1, max_denominator=50),
    st.integers(min_value=1, max_value=300),
)
def test_spec_decode_accepts_exactly_the_rate(k: int, rate: Fraction, steps: int) -> None:
    """After D draft tokens exactly floor(D * rate) were accepted, each step within 0..k."""
    acceptance = engine.DraftAcceptance(k, float(rate))
    accepted = [acceptance.next_step() for _ in range(steps)]
    assert all(0 <= a <= k for a in accepted)
    exact = acceptance.rate
    assert sum(accepted) == int(steps * k * exact)
    assert abs(exact - rate) < Fraction(1, 5000)


def test_spec_decode_rate_is_exact_over_whole_periods() -> None:
    """Δaccepted/Δdraft equals the configured rate over any window of whole periods."""
    acceptance = engine.DraftAcceptance(3, 0.7)
    for _ in range(10):  # one period: 30 draft tokens, 21 accepted
        acceptance.next_step()
    drafts_before = acceptance.draft_tokens
    accepted = sum(acceptance.next_step() for _ in range(10 * 5))
    assert Fraction(accepted, acceptance.draft_tokens - drafts_before) == Fraction(7, 10)


@given(st.integers(min_value=1, max_value=400), st.integers(min_value=0, max_value=4))
def test_engine_steps_yield_every_token(tokens: int, k: int) -> None:
    """Engine steps yield exactly the generated tokens; the prefill step yields one."""
    acceptance = engine.DraftAcceptance(k, 0.5) if k else None
    steps = engine.engine_steps(tokens, acceptance)
    assert sum(s.tokens for s in steps) == tokens
    assert steps[0].tokens == 1
    assert all(1 <= s.tokens <= k + 1 for s in steps)
    assert all(s.tokens == s.accepted + 1 for s in steps[1:-1])


@given(
    st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=50),
    st.floats(min_value=0, max_value=500),
    st.floats(min_value=0, max_value=50),
)
def test_scheduled_times_are_ttft_then_itl_per_token(
    sizes: list[int], ttft_ms: float, itl_ms: float
) -> None:
    """Without jitter a step is due at TTFT plus ITL for each token after the first step's."""
    steps = [engine.Step(tokens=n) for n in sizes]
    times = engine.step_times(steps, ttft_ms / 1e3, itl_ms / 1e3, 0.0, random.Random(0))  # noqa: S311
    assert times[0] == ttft_ms / 1e3
    for i in range(1, len(sizes)):
        expected = ttft_ms / 1e3 + sum(sizes[1 : i + 1]) * itl_ms / 1e3
        assert abs(times[i] - expected) < 1e-9


@given(st.integers(min_value=0, max_value=2**32), st.floats(min_value=0.1, max_value=20))
def test_jitter_never_goes_back_in_time_and_is_seeded(seed: int, jitter_ms: float) -> None:
    """Jittered step times never decrease, and the same seed gives the same times."""
    steps = [engine.Step(tokens=1)] * 30
    a = engine.step_times(steps, 0.01, 0.001, jitter_ms / 1e3, random.Random(seed))  # noqa: S311
    b = engine.step_times(steps, 0.01, 0.001, jitter_ms / 1e3, random.Random(seed))  # noqa: S311
    assert a == b
    assert all(x <= y for x, y in itertools.pairwise(a))


def test_a_generation_is_harmony_shaped() -> None:
    """Reasoning in the analysis channel, content in final, ending with <|return|>."""
    gen = plan()
    text = "".join(gen.text_of(t) for t in gen.tokens)
    assert text.startswith("<|channel|>analysis<|message|>The user asks:")
    assert "<|end|><|start|>assistant<|channel|>final<|message|>" in text
    assert text.endswith("<|return|>")
    assert gen.finish_reason == "stop"
    assert gen.stop_reason is None


def test_reasoning_effort_changes_how_much_reasoning_comes_out() -> None:
    """low < medium < high reasoning tokens; no effort is medium."""
    lengths = {e: len(plan(reasoning_effort=e).tokens) for e in ("low", "medium", "high")}
    assert lengths["low"] < lengths["medium"] < lengths["high"]
    assert len(plan(reasoning_effort=None).tokens) == lengths["medium"]


@given(st.integers(min_value=1, max_value=200))
def test_max_tokens_is_honoured(max_tokens: int) -> None:
    """A generation never exceeds max_tokens; cut short it finishes with length."""
    full = plan()
    gen = plan(max_tokens=max_tokens)
    assert len(gen.tokens) == min(max_tokens, len(full.tokens))
    assert gen.finish_reason == ("stop" if max_tokens >= len(full.tokens) else "length")


@given(st.integers(min_value=60, max_value=400))
def test_ignore_eos_runs_to_max_tokens(max_tokens: int) -> None:
    """With ignore_eos the output is exactly max_tokens long and finishes with length."""
    gen = plan(ignore_eos=True, max_tokens=max_tokens)
    assert len(gen.tokens) == max_tokens
    assert gen.finish_reason == "length"
    assert engine.RETURN not in gen.tokens


def test_a_tool_prompt_yields_a_harmony_tool_call() -> None:
    """Tools plus a prompt naming one gives a commentary message to functions.NAME ending in
    <|call|> (stop_reason 200012), with arguments from the prompt."""
    gen = plan(tools=[WEATHER], messages=[{"role": "user", "content": "Use get_weather in Oslo"}])
    text = "".join(gen.text_of(t) for t in gen.tokens)
    assert "<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>" in text
    assert gen.tool_arguments == '{"city":"Oslo"}'
    assert text.endswith('{"city":"Oslo"}<|call|>')
    assert gen.stop_reason == engine.CALL


def test_tool_choice_rules() -> None:
    """Named and required choices force a call; none never calls; auto (and absent) calls on a
    user turn, even an unrelated prompt (the first tool: the agent-loop rule, issue #14, which
    replaced "auto without naming a tool gets no call"), and answers a tool result."""
    tools = [WEATHER]
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert engine.choose_tool(tools, named, "hello") is WEATHER
    assert engine.choose_tool(tools, "required", "hello") is WEATHER
    assert engine.choose_tool(tools, "none", "get_weather") is None
    assert engine.choose_tool(tools, "auto", "tell me a joke") is WEATHER
    assert engine.choose_tool(tools, None, "what is the get weather") is WEATHER
    assert engine.choose_tool(tools, "auto", "sunny", role="tool") is None
    assert engine.choose_tool(tools, "required", "sunny", role="tool") is WEATHER


@given(st.integers(min_value=0, max_value=2**31))
def test_generations_are_deterministic_under_a_seed(seed: int) -> None:
    """The same seed and request give the same tokens."""
    assert plan(seed=seed).tokens == plan(seed=seed).tokens


@given(st.text(max_size=200))
def test_the_fake_tokenizer_loses_nothing(text: str) -> None:
    """Pieces join back to the text, and the prompt count grows with the text."""
    assert "".join(engine.split_pieces(text)) == text
    short = engine.count_prompt_tokens([{"role": "user", "content": text}])
    longer = engine.count_prompt_tokens([{"role": "user", "content": text + " more words"}])
    assert longer > short >= engine.PROMPT_OVERHEAD_TOKENS


@given(st.integers(min_value=0, max_value=2**31), st.sampled_from(["low", "medium"]))
def test_interval_one_streams_exactly_the_reasoning_and_content(seed: int, effort: str) -> None:
    """At --stream-interval 1 the reasoning and content deltas concatenate to the texts."""
    gen = plan(seed=seed, reasoning_effort=effort)
    deltas = engine.harmony_deltas(gen, [1] * len(gen.tokens))
    assert "".join(d.text for d in deltas if d.kind == "reasoning") == gen.reasoning
    assert "".join(d.text for d in deltas if d.kind == "content") == gen.content
    assert len(deltas) == len(gen.tokens)


@given(st.integers(min_value=0, max_value=2**31), st.integers(min_value=2, max_value=25))
def test_a_batched_delta_is_its_tokens_text_labelled_by_its_last_token(
    seed: int, interval: int
) -> None:
    """Under vLLM 0.13.0's rule an output's delta is the text of all its tokens, labelled by the
    channel after its last token (so a batch crossing into final is all content, and a batch
    ending outside a message is dropped)."""
    gen = plan(seed=seed)
    per_token = engine.harmony_deltas(gen, [1] * len(gen.tokens))
    sizes = [n for _, n in engine.batch_outputs([1] * len(gen.tokens), interval)]
    deltas = engine.harmony_deltas(gen, sizes)
    pos = 0
    for size, delta in zip(sizes, deltas, strict=True):
        tokens = per_token[pos : pos + size]
        pos += size
        assert delta.kind == tokens[-1].kind
        if delta.kind is not None:
            assert delta.text == "".join(t.text for t in tokens)


def test_a_batch_ending_after_return_drops_its_text() -> None:
    """vLLM 0.13.0 drops the text of an output that ends outside a message (issue #30204)."""
    gen = plan(content_tokens=5)
    last_two = [len(gen.tokens) - 2, 2]  # everything, then [last content token, <|return|>]
    deltas = engine.harmony_deltas(gen, last_two)
    assert deltas[-1].kind is None


def test_hidden_reasoning_emits_no_reasoning_deltas() -> None:
    """include_reasoning false hides every reasoning delta."""
    gen = plan()
    deltas = engine.harmony_deltas(gen, [1] * len(gen.tokens), include_reasoning=False)
    assert not [d for d in deltas if d.kind == "reasoning"]
    assert "".join(d.text for d in deltas if d.kind == "content") == gen.content


def test_tool_call_deltas_start_with_the_name_then_stream_arguments() -> None:
    """The first tool delta names the function; the argument deltas join to the JSON."""
    gen = plan(tools=[WEATHER], messages=[{"role": "user", "content": "get_weather for Rome"}])
    deltas = engine.harmony_deltas(gen, [1] * len(gen.tokens))
    tool = [d for d in deltas if d.kind in ("tool_start", "tool_args")]
    assert tool[0] == engine.Delta("tool_start", "get_weather", 0)
    assert "".join(d.text for d in tool[1:]) == gen.tool_arguments


def test_the_non_streamed_message_follows_the_tool_parser() -> None:
    """With the openai tool parser: calls with json.dumps arguments and no content; without
    it the arguments are content."""
    gen = plan(tools=[WEATHER], messages=[{"role": "user", "content": "get_weather for Rome"}])
    with_parser = engine.final_message(gen, tool_parser=True)
    assert with_parser.tool_calls == [("get_weather", '{"city": "Rome"}')]
    assert with_parser.content is None
    assert with_parser.finish_reason == "tool_calls"
    without = engine.final_message(gen, tool_parser=False)
    assert without.content == '{"city":"Rome"}'
    assert without.tool_calls == []
    assert without.reasoning == gen.reasoning


def test_every_reasoning_effort_has_a_reasoning_length() -> None:
    """The engine plans a reasoning length for exactly the efforts the request builder accepts."""
    from gptoss_modal.stream.request import REASONING_EFFORTS

    assert set(engine.REASONING_TOKENS) == set(REASONING_EFFORTS)
