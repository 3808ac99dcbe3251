"""The deployed app, for real: auth, the OpenAI-compatible surface, the contract, the budgets.

Skipped with one reason without Modal credentials (see conftest.py). Costs GPU time when run.
"""

from __future__ import annotations

import os
import subprocess
import sys

import aiohttp
import pytest

from gptoss_modal.bench.budgets import Budgets
from gptoss_modal.deploy.launch import Redactor
from gptoss_modal.stream.client import Client
from tests.e2e.conftest import Deployed
from tests.e2e.known_failures import LOST_LAST_BATCH_ENV, REASON
from tests.e2e.latency import one_stream_run, record
from tests.e2e.marks import CONTRACT_TIMEOUT_S
from tests.e2e.responses import function_call_response, record_responses, responses_run
from tests.e2e.results import E2EResults, check_line
from tests.e2e.settings import ROOT, E2ESettings

pytestmark = pytest.mark.e2e

SHORT_PROMPT = "Name three prime numbers."
ARITHMETIC = "What is 17 * 23? Answer with the number only."
# The one-token answer sits in the stream's last batch; asked this often, an affected
# deployment loses it at least once all but surely, so its strict xfail does not flake.
STREAMED_CHAT_TRIES = 3


def _client(deployed: Deployed) -> Client:
    return Client(deployed.url, api_key=deployed.api_key, model="llm")


def test_the_start_is_within_budget(deployed: Deployed, budgets: Budgets) -> None:
    """From zero containers, /health answered 200 within the GPU's cold-start budget (empty
    cache Volumes) or warm-start budget (filled ones)."""
    kind = "warm_start_s" if deployed.warm_caches else "cold_start_s"
    limit = budgets.warm_start_s if deployed.warm_caches else budgets.cold_start_s
    assert limit is not None, f"no {kind} budget for {budgets.name}"
    assert deployed.start_s <= limit, (
        f"the start ({kind}) took {deployed.start_s:.0f} s, budget {limit:g} s"
    )


async def test_models_lists_the_served_names(deployed: Deployed) -> None:
    """/v1/models has one card per served name, the model id and 'llm' by default."""
    headers = {"Authorization": f"Bearer {deployed.api_key}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{deployed.url}/v1/models", headers=headers) as response,
    ):
        assert response.status == 200
        body = await response.json()
    assert [card["id"] for card in body["data"]] == list(deployed.served_model_names)


async def test_requests_without_the_key_are_refused(deployed: Deployed) -> None:
    """/v1/* answers 401 with no key and with a wrong key; only /health is open."""
    chat = {"model": "llm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    wrong = {"Authorization": "Bearer not-the-key"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{deployed.url}/v1/chat/completions", json=chat) as response:
            assert response.status == 401
        async with session.post(
            f"{deployed.url}/v1/chat/completions", json=chat, headers=wrong
        ) as response:
            assert response.status == 401
        async with session.get(f"{deployed.url}/v1/models") as response:
            assert response.status == 401
        async with session.get(f"{deployed.url}/health") as response:
            assert response.status == 200


async def test_a_streamed_chat_reasons_then_answers(
    deployed: Deployed, request: pytest.FixtureRequest
) -> None:
    """A streamed chat with low reasoning effort returns reasoning first, then the content
    (each of a few tries; a strict xfail where the deployment is known to lose it)."""
    if deployed.loses_last_batch:
        why = f"{REASON}: the one-token answer is in the last batch"
        request.applymarker(pytest.mark.xfail(strict=True, reason=why))
    async with _client(deployed) as client:
        for _ in range(STREAMED_CHAT_TRIES):
            result = await client.chat(ARITHMETIC, reasoning_effort="low", max_tokens=1024)
            assert result.done
            assert result.finish_reason == "stop"
            assert result.reasoning.strip()
            assert "391" in result.content.replace(",", "")
            first_reasoning = next(i for i, c in enumerate(result.chunks) if c.reasoning)
            first_content = next(i for i, c in enumerate(result.chunks) if c.content)
            assert first_reasoning < first_content


async def test_the_usage_chunk_is_present(deployed: Deployed) -> None:
    """The stream ends with a usage chunk (no choices) whose counts add up."""
    async with _client(deployed) as client:
        result = await client.chat(SHORT_PROMPT, reasoning_effort="low", max_tokens=256)
    usage_chunks = [c for c in result.chunks if not c.choices and c.usage is not None]
    assert len(usage_chunks) == 1
    usage = usage_chunks[0].usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_the_contract_suite_passes_against_the_deployment(
    deployed: Deployed, results: E2EResults
) -> None:
    """tests/contract, which the mock passes, passes against the real URL (mock-only skipped;
    the checks the deployed vLLM is known to fail marked xfail by known_failures.py)."""
    env = {k: v for k, v in os.environ.items() if k != "GPTOSS_REQUIRE_VLLM"}
    env |= {
        "GPTOSS_BASE_URL": deployed.url,
        "GPTOSS_API_KEY": deployed.api_key,
        "GPTOSS_SERVED_MODEL": "llm",
        LOST_LAST_BATCH_ENV: "1" if deployed.loses_last_batch else "0",
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/contract",
            "-m",
            "not mock_only",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.e2e.known_failures",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CONTRACT_TIMEOUT_S,
    )
    redact = Redactor([deployed.api_key])
    tail = redact("\n".join((run.stdout + run.stderr).splitlines()[-40:]))
    results.note(f"contract suite: exit {run.returncode}: {tail.splitlines()[-1] if tail else ''}")
    assert run.returncode == 0, f"the contract suite failed against {deployed.url}:\n{tail}"


async def test_one_stream_latency_is_within_budget(
    deployed: Deployed, budgets: Budgets, results: E2EResults, e2e_settings: E2ESettings
) -> None:
    """At one stream at a time the load driver's TTFT, TPOT and decode rate hold the GPU's
    level-1 budgets (same definitions and file format as `gptoss-modal bench`)."""
    run = await one_stream_run(deployed.url, deployed.api_key, e2e_settings, budgets)
    e2e_settings.bench_path.parent.mkdir(parents=True, exist_ok=True)
    run.write_json(e2e_settings.bench_path)
    level = record(run, results)
    assert level.limits, f"no level-1 budgets for {budgets.name}"
    failed = [check_line(check) for check in level.checks if not check.passed]
    assert not failed, "\n".join(failed)


async def test_a_streamed_response_reasons_calls_and_reports_usage(deployed: Deployed) -> None:
    """One streamed Responses request (/v1/responses) with a function tool: reasoning before
    anything else it generates, a get_weather call with complete JSON arguments, then
    response.completed with usage that adds up."""
    async with _client(deployed) as client:
        result = await function_call_response(client)
    assert result.done
    assert result.output.status == "completed"
    assert result.reasoning.strip()
    (call, *_) = result.output.function_calls
    assert call.name == "get_weather"
    assert isinstance(call.parsed_arguments(), dict)
    kinds = [e.type for e in result.chunks]
    assert kinds.index("response.reasoning_text.delta") < kinds.index(
        "response.function_call_arguments.delta"
    )
    usage = result.usage
    assert usage is not None
    assert usage.input_tokens > 0
    assert usage.output_tokens > 0
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens


async def test_responses_latency_is_within_the_chat_budgets(
    deployed: Deployed, budgets: Budgets, results: E2EResults, e2e_settings: E2ESettings
) -> None:
    """Sequential Responses requests hold the GPU's level-1 budgets (TTFT, TPOT, decode
    rate, errors), the same limits the chat stream holds."""
    async with _client(deployed) as client:
        level = await responses_run(client, e2e_settings.warm_requests, budgets)
    record_responses(level, results)
    assert level.checks, f"no level-1 budgets for {budgets.name}"
    failed = [check_line(check) for check in level.failed]
    assert not failed, "responses: " + "\n".join(failed)
