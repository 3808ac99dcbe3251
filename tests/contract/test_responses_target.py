"""The Responses API of the server under test: the in-process mock, or a real deployment at
``GPTOSS_BASE_URL`` (the e2e suite runs this file against the deployed app).

What must hold for any server that serves gpt-oss's ``/v1/responses``: a streamed request
reasons, then answers, and ends with a terminal event whose copy of the text and reasoning is
what the deltas spelt; the usage adds up; the three TTFTs are ordered; a function tool gets a
call with complete JSON arguments; and the ``gptoss-modal chat --api responses`` command shows
the reply. Nothing is skipped, against the mock or a real URL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gptoss_modal import Client, ResponseResult
from gptoss_modal.stream.responses import ResponseLifecycleEvent
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM
from tests.contract.conftest_server import MOCK_API_KEY, Target, real_base_url, real_target

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "What is 17 * 23? Answer with the number only."
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
WEATHER_PROMPT = "What is the weather in Paris right now? Use the get_weather tool."
MAX_OUTPUT_TOKENS = 1024  # room for low-effort reasoning and a short answer
CLI_TIMEOUT_S = 300.0  # one short request, a cold deployment's queue included


@pytest.fixture
async def responses_target() -> AsyncIterator[Target]:
    """The real server at GPTOSS_BASE_URL, else the in-process mock."""
    url = real_base_url()
    if url:
        yield real_target(url, os.environ)
        return
    async with MockVLLM(MockConfig(api_keys=(MOCK_API_KEY,), content_tokens=24)) as server:
        yield Target(base_url=server.url, api_key=MOCK_API_KEY, model="llm", mock=server)


def client_for(target: Target) -> Client:
    return Client(
        target.base_url, api_key=target.api_key, headers=target.proxy_headers, model=target.model
    )


def cli_env(target: Target) -> dict[str, str]:
    """The environment for the CLI: the caller's, minus GPTOSS_* settings, plus the target's
    key and any Modal proxy auth (credentials travel in the environment, never on argv)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPTOSS_")}
    if target.api_key:
        env["GPTOSS_API_KEY"] = target.api_key
    for name in ("GPTOSS_MODAL_KEY", "GPTOSS_MODAL_SECRET"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def run_cli(target: Target, *options: str) -> subprocess.CompletedProcess[str]:
    """`gptoss-modal chat URL PROMPT --api responses OPTIONS` in a subprocess."""
    argv = [sys.executable, "-m", "gptoss_modal", "chat", target.base_url, PROMPT]
    argv += ["--api", "responses", "--reasoning-effort", "low", "--model", target.model]
    return subprocess.run(
        [*argv, *options],
        cwd=ROOT,
        env=cli_env(target),
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def terminal_copy(result: ResponseResult) -> tuple[str, str]:
    """The answer and reasoning as the terminal event's whole response holds them."""
    terminal = result.chunks[-1]
    assert isinstance(terminal, ResponseLifecycleEvent)
    text = reasoning = ""
    for item in terminal.response.output:
        for part in item.content or ():
            if item.type == "message" and part.type == "output_text":
                text += part.text
            elif item.type == "reasoning":
                reasoning += part.text
    return text, reasoning


async def test_a_streamed_response_reasons_then_answers(responses_target: Target) -> None:
    """Reasoning deltas come before the answer's, the stream ends with response.completed,
    and the text and reasoning the deltas spelt equal the terminal event's copy."""
    async with client_for(responses_target) as client:
        result = await client.respond(
            PROMPT, reasoning_effort="low", max_output_tokens=MAX_OUTPUT_TOKENS
        )
    assert result.done
    assert result.chunks[-1].type == "response.completed"
    assert result.output.status == "completed"
    assert result.reasoning.strip()
    assert result.text.strip()
    assert terminal_copy(result) == (result.text, result.reasoning)
    kinds = [e.type for e in result.chunks]
    first_reasoning = kinds.index("response.reasoning_text.delta")
    assert first_reasoning < kinds.index("response.output_text.delta")
    assert [e.sequence_number for e in result.chunks] == list(range(len(result.chunks)))


async def test_the_usage_adds_up_and_the_timings_are_ordered(responses_target: Target) -> None:
    """The terminal usage has input and output tokens that sum to the total, reasoning tokens
    within the output; first event <= first output <= first answer <= last output."""
    async with client_for(responses_target) as client:
        result = await client.respond(
            PROMPT, reasoning_effort="low", max_output_tokens=MAX_OUTPUT_TOKENS
        )
    usage = result.usage
    assert usage is not None
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    if usage.output_tokens_details is not None:
        assert 0 < usage.output_tokens_details.reasoning_tokens <= usage.output_tokens
    stamps = (result.first_chunk_s, result.ttft_s, result.ttft_content_s, result.ttlt_s)
    assert None not in stamps
    assert sorted(stamps) == list(stamps)  # type: ignore[type-var]  # None excluded above


async def test_a_function_tool_gets_a_call_with_complete_arguments(
    responses_target: Target,
) -> None:
    """With a function tool and a question it answers, the response ends with a function call
    whose argument JSON parses to an object, its call id set for the follow-up."""
    async with client_for(responses_target) as client:
        result = await client.respond(
            WEATHER_PROMPT,
            reasoning_effort="low",
            tools=[WEATHER_TOOL],
            max_output_tokens=MAX_OUTPUT_TOKENS,
        )
    assert result.done
    calls = result.output.function_calls
    assert calls, f"no function call; answer: {result.text!r}"
    call = calls[0]
    assert call.name == "get_weather"
    assert call.id
    assert isinstance(call.parsed_arguments(), dict)


async def test_the_chat_command_shows_the_reply(responses_target: Target) -> None:
    """`gptoss-modal chat --api responses` prints the answer and ends with the timing line."""
    run = await asyncio.to_thread(run_cli, responses_target)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip()
    assert "time to first token" in run.stderr
    assert "Traceback" not in run.stderr


async def test_the_jsonl_result_line_names_the_api(responses_target: Target) -> None:
    """`--output jsonl` ends with a result line for the responses API with its usage."""
    run = await asyncio.to_thread(run_cli, responses_target, "--output", "jsonl")
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert lines[-1]["type"] == "result"
    assert (lines[-1]["api"], lines[-1]["status"]) == ("responses", "completed")
    assert lines[-1]["usage"]["output_tokens"] > 0
    assert any(line["type"] == "content" for line in lines)
