"""The prompts: seeded synthetic ones of a given length, and the JSONL file with typed errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gptoss_modal import ConfigError
from gptoss_modal.bench.prompts import load_prompts, synthetic_messages


def seeded(seed: int) -> random.Random:
    return random.Random(seed)  # noqa: S311 - a seeded workload, as in the benchmark


@given(st.integers(0, 2**32), st.integers(1, 3000))
def test_synthetic_prompts_have_the_requested_words(seed: int, words: int) -> None:
    """A synthetic prompt is the instruction plus exactly `words` single words."""
    (message,) = synthetic_messages(seeded(seed), words)
    text = message["content"]
    body = text.partition(":")[2]
    assert len(body.split()) == words
    assert body == "".join(" " + w for w in body.split())


@given(st.integers(0, 2**32))
def test_synthetic_prompts_follow_the_seed(seed: int) -> None:
    """The same seed gives the same prompt; the next seed (almost always) another one."""
    first = synthetic_messages(seeded(seed), 200)
    assert first == synthetic_messages(seeded(seed), 200)
    assert first != synthetic_messages(seeded(seed + 1), 200)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prompts.jsonl"
    path.write_text(text)
    return path


def test_prompts_file_is_read_line_by_line(tmp_path: Path) -> None:
    """Each non-blank line is one conversation; text parts are allowed as content."""
    path = write(
        tmp_path,
        '{"messages": [{"role": "system", "content": "be brief"}, '
        '{"role": "user", "content": "hi"}]}\n'
        "\n"
        '{"messages": [{"role": "user", "content": [{"type": "text", "text": "yo"}]}]}\n',
    )
    prompts = load_prompts(path)
    assert len(prompts) == 2
    assert prompts[0][1] == {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("text", "field", "allowed"),
    [
        ("{not json}\n", "prompts.jsonl:1", "one JSON object per line"),
        ('["a"]\n', "prompts.jsonl:1", '"messages"'),
        ('{"messages": []}\n', "prompts.jsonl:1.messages", "non-empty list"),
        ('{"messages": ["hi"]}\n', "prompts.jsonl:1.messages[0]", "role"),
        (
            '\n{"messages": [{"role": "robot", "content": "x"}]}\n',
            "prompts.jsonl:2.messages[0].role",
            "user",
        ),
        (
            '{"messages": [{"role": "user", "content": 5}]}\n',
            "prompts.jsonl:1.messages[0].content",
            "string",
        ),
        ("\n\n", "--prompts", "at least one prompt"),
    ],
)
def test_bad_prompts_name_the_line_and_field(
    tmp_path: Path, text: str, field: str, allowed: str
) -> None:
    """A bad prompts file raises ConfigError naming line and field, and what is allowed."""
    with pytest.raises(ConfigError) as info:
        load_prompts(write(tmp_path, text))
    assert info.value.field.endswith(field)
    assert allowed in info.value.allowed


def test_a_missing_prompts_file_is_a_config_error(tmp_path: Path) -> None:
    """A prompts path that cannot be read is reported as --prompts."""
    with pytest.raises(ConfigError, match="readable") as info:
        load_prompts(tmp_path / "missing.jsonl")
    assert info.value.field == "--prompts"


def test_prompt_lines_and_sharegpt_files_load(tmp_path: Path) -> None:
    """A {"prompt"} line is one user request; a ShareGPT array gives each conversation's system
    and first user turn; entries with no user turn are skipped and counted."""
    from gptoss_modal.bench.prompts import load_dataset

    lines = tmp_path / "prompts.jsonl"
    lines.write_text('{"prompt": "hi"}\n{"messages": [{"role": "user", "content": "yo"}]}\n')
    plain = load_dataset(lines)
    assert plain.format == "jsonl"
    assert plain.prompts == (
        ({"role": "user", "content": "hi"},),
        ({"role": "user", "content": "yo"},),
    )
    share = tmp_path / "sharegpt.json"
    conversations = [
        {
            "conversations": [
                {"from": "system", "value": "be brief"},
                {"from": "human", "value": "a?"},
                {"from": "gpt", "value": "b"},
                {"from": "human", "value": "c?"},
            ]
        },
        {"conversations": [{"from": "gpt", "value": "alone"}]},
    ]
    share.write_text(json.dumps(conversations))
    data = load_dataset(share)
    assert data.format == "sharegpt"
    assert data.prompts == (
        ({"role": "system", "content": "be brief"}, {"role": "user", "content": "a?"}),
    )
    assert data.skipped == 1


def test_a_sharegpt_turn_with_an_unknown_speaker_names_it(tmp_path: Path) -> None:
    """A ShareGPT turn from an unknown speaker is a ConfigError naming the entry and turn."""
    from gptoss_modal.bench.prompts import load_dataset

    share = tmp_path / "s.jsonl"
    share.write_text('{"conversations": [{"from": "robot", "value": "x"}]}\n')
    with pytest.raises(ConfigError) as info:
        load_dataset(share)
    assert info.value.field.endswith("s.jsonl:1.conversations[0]")
