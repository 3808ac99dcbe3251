"""vLLM 0.33.0's harmony streaming as the mock transcribes it: nothing lost, nothing mislabelled."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.serve.options import DEFAULT_VLLM_VERSION, VLLM_VERSIONS
from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing._harmony_v033 import plan_stream
from gptoss_modal.testing._layout import (
    TOOL_LENGTH_ERROR,
    ChatStreamOptions,
    StreamSettings,
    chat_stream_events,
)
from gptoss_modal.testing._planning import GenerationRequest, Planner
from gptoss_modal.testing.mock_server import MockConfig

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ASK = ({"role": "user", "content": "Weather in Paris? Use get_weather."},)


def _generation(tools: bool, max_tokens: int = 400) -> engine.Generation:
    return engine.plan_generation(
        messages=ASK,
        seed=7,
        reasoning_effort="low",
        content_tokens=30,
        max_tokens=max_tokens,
        ignore_eos=False,
        tools=[TOOL] if tools else (),
    )


def _sizes(total: int, cuts: list[int]) -> list[int]:
    points = sorted({c % total for c in cuts if c % total > 0} | {total})
    return [b - a for a, b in zip([0, *points], points, strict=False)]


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.integers(1, 10_000), max_size=12), tools=st.booleans())
def test_any_batching_keeps_every_text_under_its_own_label(cuts: list[int], tools: bool) -> None:
    """However the tokens are split into outputs, the reasoning, content and arguments pieces
    add up to the generation's own texts (0.33.0 parses every token)."""
    gen = _generation(tools)
    stream = plan_stream(gen, _sizes(len(gen.tokens), cuts))
    deltas = [d for d in stream.deltas if d is not None]
    assert "".join(d.reasoning or "" for d in deltas) == gen.reasoning
    assert "".join(d.content or "" for d in deltas) == gen.content
    arguments = "".join(d.tool[2] for d in deltas if d.tool)
    assert arguments == (gen.tool_arguments or "")
    assert stream.tools_streamed == tools
    assert stream.reasoning_tokens == sorted(stream.reasoning_tokens)


def test_0_13_0_loses_what_0_33_0_keeps() -> None:
    """The partner: 0.13.0's labelling by the channel an output ends in drops text for the
    same batching (vllm#30204), so the property above is not trivially true."""
    gen = _generation(tools=False)
    sizes = _sizes(len(gen.tokens), list(range(20, len(gen.tokens), 20)))
    old = engine.harmony_deltas(gen, sizes)
    assert "".join(d.text for d in old if d.kind == "content") != gen.content
    new = plan_stream(gen, sizes).deltas
    assert "".join(d.content or "" for d in new if d) == gen.content


def test_hidden_reasoning_sends_content_with_an_explicit_null() -> None:
    """``include_reasoning: false`` drops reasoning-only outputs and marks the others."""
    gen = _generation(tools=False)
    deltas = plan_stream(gen, [1] * len(gen.tokens), include_reasoning=False).deltas
    sent = [d for d in deltas if d is not None]
    assert sent
    assert all(d.reasoning is None and d.reasoning_hidden and d.content for d in sent)


def _stream(version: str, max_tokens: int) -> list[bytes]:
    config = MockConfig(vllm_version=version)  # type: ignore[arg-type]
    plan = Planner(config).plan(GenerationRequest(ASK, tools=[TOOL], max_tokens=max_tokens))
    events = chat_stream_events(
        plan,
        request_id="chatcmpl-t",
        created=1,
        model="llm",
        options=ChatStreamOptions(include_usage=True),
        settings=StreamSettings(vllm_version=version, fingerprint="fp"),
    )
    return events.events


def _cut_inside_arguments() -> int:
    gen = Planner(MockConfig()).plan(GenerationRequest(ASK, tools=[TOOL])).generation
    return [i for i, t in enumerate(gen.tokens) if t == engine.MESSAGE][-1] + 3


def test_max_tokens_inside_a_tool_call_per_version() -> None:
    """Cut inside the arguments, 0.13.0 ends with its in-stream error and no finish or usage
    chunk (vllm#37937); 0.33.0 finishes with ``length`` and the usage chunk."""
    cut = _cut_inside_arguments()
    old = _stream("0.13.0", cut)
    assert old[-2:] == [TOOL_LENGTH_ERROR, b"data: [DONE]\n\n"]
    assert not any(b'"finish_reason":"' in e for e in old)
    new = _stream("0.33.0", cut)
    assert b'"finish_reason":"length"' in new[-3]
    assert b'"choices":[],"usage"' in new[-2]


def test_the_mock_serves_the_package_default_and_refuses_other_versions() -> None:
    """``MockConfig()`` serves the default version; anything else names the supported ones."""
    assert MockConfig().vllm_version == DEFAULT_VLLM_VERSION
    assert MockConfig().version == DEFAULT_VLLM_VERSION
    with pytest.raises(ConfigError) as caught:
        MockConfig(vllm_version="0.20.0")  # type: ignore[arg-type]
    assert all(v in str(caught.value) for v in VLLM_VERSIONS)
    assert caught.value.field == "vllm_version"
