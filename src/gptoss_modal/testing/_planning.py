"""What the mock generates for a request, decided before its first byte: tokens, engine steps,
and when each step is ready. API-neutral: chat completions (and any other API the mock serves)
turn their body into a :class:`GenerationRequest` and lay the :class:`Plan` out on their wire.

Pure apart from the server-wide state it must keep: the speculative-decoding acceptance
sequence (drawn across all requests, in arrival order), a cache of generations for identical
requests (benchmarks send many) and the recent plans ``engine_script`` reads back.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gptoss_modal.testing import _engine as engine
from gptoss_modal.testing._config import MockConfig
from gptoss_modal.testing._prefix_cache import NO_CACHE_HIT, PrefixCache, PromptCache, block_hashes
from gptoss_modal.testing._tool_faults import ToolFaultSchedule
from gptoss_modal.testing._validation import context_too_long

__all__ = ["GenerationRequest", "Plan", "Planner"]

GENERATIONS_KEPT = 256  # generations cached for identical requests
SCRIPTS_KEPT = 1000  # plans kept for engine_script


@dataclass(frozen=True)
class GenerationRequest:
    """What a request asks the engine for, whatever API it came through."""

    messages: Sequence[dict[str, Any]]
    tools: Sequence[dict[str, Any]] = ()
    tool_choice: Any = None  # "auto", "none", "required" or {"function": {"name": ...}}
    reasoning_effort: str | None = None
    max_tokens: int | None = None  # the request's own cap, if any
    ignore_eos: bool = False
    seed: int | None = None  # the request's own seed, if any
    count_cache: bool = False  # look the prompt up in the prefix cache even without the flag


@dataclass
class Plan:
    """One request's generation, its engine steps and when each is ready."""

    generation: engine.Generation
    steps: list[engine.Step]
    times: list[float]  # per step, seconds after arrival
    prompt_tokens: int
    rng: random.Random  # seeded per request: jitter, then a fault's position
    prompt_cache: PromptCache = NO_CACHE_HIT  # the prefix cache's hit (when reported)

    def step_tokens(self) -> list[list[int]]:
        """The token ids each engine step yields."""
        out, pos = [], 0
        for step in self.steps:
            out.append(self.generation.tokens[pos : pos + step.tokens])
            pos += step.tokens
        return out


class Planner:
    """Plans requests for one server, in arrival order."""

    def __init__(self, config: MockConfig) -> None:
        self.config = config
        self._acceptance = (
            engine.DraftAcceptance(config.num_speculative_tokens, config.spec_acceptance_rate)
            if config.num_speculative_tokens
            else None
        )
        self._generations: dict[str, engine.Generation] = {}
        self._kept: dict[str, Plan] = {}
        self._kept_order: deque[str] = deque()
        self.tool_faults = ToolFaultSchedule(config.tool_fault_rates)
        self.prefix_cache = PrefixCache()

    def plan(self, request: GenerationRequest) -> Plan:
        """The plan of one request; a prompt that leaves no room to generate is refused as vLLM
        refuses it (:class:`~gptoss_modal.testing._validation.Rejection`)."""
        c = self.config
        prompt_tokens = engine.count_prompt_tokens(request.messages, request.tools)
        max_tokens = c.max_model_len - prompt_tokens
        if request.max_tokens is not None:
            max_tokens = min(max_tokens, request.max_tokens)
        if max_tokens < 1:
            raise context_too_long(c.max_model_len, prompt_tokens)
        seed = engine.request_seed(c.seed, request.seed, request.messages)
        generation = self._generation(request, seed, max_tokens)
        if generation.tool_name is not None:  # a tool-call turn: the faults' schedule counts it
            fault = self.tool_faults.next_call()
            if fault is not None:
                generation = self._generation(request, seed, max_tokens, fault)
        steps = engine.engine_steps(len(generation.tokens), self._acceptance)
        rng = random.Random(seed ^ 0x5EED)  # noqa: S311 - seeded timing jitter
        times = engine.step_times(steps, c.ttft_ms / 1e3, c.itl_ms / 1e3, c.jitter_ms / 1e3, rng)
        cache = NO_CACHE_HIT
        if c.enable_prompt_tokens_details or request.count_cache:
            hashes = block_hashes(request.messages, request.tools)
            cache = self.prefix_cache.lookup_and_store(hashes, prompt_tokens)
        return Plan(generation, steps, times, prompt_tokens, rng, cache)

    def _generation(
        self, request: GenerationRequest, seed: int, max_tokens: int, fault: str | None = None
    ) -> engine.Generation:
        """Identical requests (a benchmark's) generate the same tokens: build them once."""
        c = self.config
        inputs = {
            "messages": request.messages,
            "seed": seed,
            "reasoning_effort": request.reasoning_effort,
            "content_tokens": c.content_tokens,
            "max_tokens": max_tokens,
            "ignore_eos": request.ignore_eos,
            "tools": request.tools,
            "tool_choice": request.tool_choice,
            "tool_fault": fault,
        }
        key = json.dumps(inputs, sort_keys=True, default=str)
        generation = self._generations.get(key)
        if generation is None:
            generation = engine.plan_generation(
                messages=request.messages,
                seed=seed,
                reasoning_effort=request.reasoning_effort,
                content_tokens=c.content_tokens,
                max_tokens=max_tokens,
                ignore_eos=request.ignore_eos,
                tools=request.tools,
                tool_choice=request.tool_choice,
                reasoning_tokens=dict(c.reasoning_tokens),
                tool_fault=fault,
            )
            if len(self._generations) >= GENERATIONS_KEPT:
                self._generations.pop(next(iter(self._generations)))
            self._generations[key] = generation
        return generation

    def keep(self, request_id: str, plan: Plan) -> None:
        """Remember a plan under its request id (the last ``SCRIPTS_KEPT``)."""
        self._kept[request_id] = plan
        self._kept_order.append(request_id)
        while len(self._kept_order) > SCRIPTS_KEPT:
            self._kept.pop(self._kept_order.popleft(), None)

    def kept(self, request_id: str) -> Plan:
        """The plan kept under ``request_id`` (``KeyError`` if it is not among the recent)."""
        return self._kept[request_id]
