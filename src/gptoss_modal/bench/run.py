"""The load benchmark: ``await run_benchmark(settings)`` runs every level against one server.

1. a wait for ``/health`` (through a cold start), then the probe request of
   :func:`gptoss_modal.bench.driver.probe`, which is not counted;
2. per level (a concurrency, or a Poisson arrival rate; :mod:`gptoss_modal.bench.loads`; or,
   with ``--scenario agentic``, virtual users' multi-turn conversations,
   :mod:`gptoss_modal.bench.agentic`): a warm-up, a scrape of ``/metrics``, the measured
   requests (through chat completions or, ``--api responses``, the Responses API) and another
   scrape (:class:`gptoss_modal.bench.driver.Driver`);
3. each level's statistics, spec-decode acceptance and budgets
   (:func:`gptoss_modal.bench.summary.summarise`).

The result is a :class:`~gptoss_modal.bench.results.BenchRun`; its JSON document is
:class:`gptoss_modal.bench.schema.RunDoc`.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from gptoss_modal._exceptions import AllRequestsFailed, BenchmarkError, GptossModalError
from gptoss_modal.bench.agentic import AgenticLoad, AgenticWorkload, ToolChoice
from gptoss_modal.bench.budgets import Budgets
from gptoss_modal.bench.driver import Driver, MetricsScraper, Sender, probe
from gptoss_modal.bench.loads import LoadPattern, load_pattern
from gptoss_modal.bench.models import ModelsClient, served_model
from gptoss_modal.bench.progress import Progress, SilentProgress
from gptoss_modal.bench.prompts import PromptSet
from gptoss_modal.bench.results import BenchRun
from gptoss_modal.bench.settings import BenchSettings, Level
from gptoss_modal.bench.workload import Api, BenchClient, Workload

if TYPE_CHECKING:
    from gptoss_modal.stream.client import HealthProgress

__all__ = ["AllRequestsFailed", "run_benchmark"]

CONNECTIONS_SPARE: Final = 8  # connections beyond the largest level's slots (probe, scrapes)
VERSION_TIMEOUT_S: Final = 10.0


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


async def run_benchmark(
    settings: BenchSettings,
    *,
    budgets: Budgets | None = None,
    progress: Progress | None = None,
    on_health: Callable[[HealthProgress], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    cpu_clock: Callable[[], float] = time.thread_time,
    client: BenchClient | None = None,
    on_level: Callable[[BenchRun], None] | None = None,
) -> BenchRun:
    """Run every level of ``settings`` against its server and return the results.

    Raises :class:`BenchmarkError` when the server never became healthy, when the probe request
    shows that every request would fail (wrong key, model or URL), and
    :class:`AllRequestsFailed` (carrying the run, so its records can still be written) when not
    one measured request succeeded. ``client`` replaces the
    :class:`gptoss_modal.stream.client.Client` made from the settings (any
    :class:`~gptoss_modal.bench.driver.BenchClient`; tests pass a scripted one). ``clock``
    stamps requests and chunks; ``cpu_clock`` is the CPU time of the event-loop thread,
    for the client-bound warning. ``on_level`` is called with the run so far after each
    level is measured: a caller interrupted later (Ctrl-C cancels the run) still has the
    finished levels.
    """
    hooks = _Hooks(progress or SilentProgress(), on_health, on_level)
    if client is not None:
        return await _run(settings, client, budgets, hooks, clock, cpu_clock)
    from gptoss_modal.stream.client import Client  # aiohttp only when a run really starts

    async with Client(
        settings.url,
        api_key=settings.api_key,
        model=settings.model,
        headers=settings.headers,
        connect_timeout_s=settings.connect_timeout_s,
        stall_timeout_s=settings.stall_timeout_s,
        max_retries=0,  # every failure counts in a benchmark: none is hidden by a retry
        max_connections=max(level.slots for level in settings.levels) + CONNECTIONS_SPARE,
        clock=clock,
    ) as own:
        return await _run(settings, own, budgets, hooks, clock, cpu_clock)


@dataclass(frozen=True, slots=True)
class _Hooks:
    """Who hears about the run as it goes."""

    progress: Progress
    on_health: Callable[[HealthProgress], None] | None
    on_level: Callable[[BenchRun], None] | None


async def _run(
    settings: BenchSettings,
    client: BenchClient,
    budgets: Budgets | None,
    hooks: _Hooks,
    clock: Callable[[], float],
    cpu_clock: Callable[[], float],
) -> BenchRun:
    sink = hooks.progress
    run = BenchRun(
        settings=settings,
        started_at=_now_iso(),
        budgets_section=budgets.name if budgets else None,
        budgets_source=budgets.source if budgets else None,
        budgets_not_measured=budgets.not_measured(
            (level.concurrency, level.rate) for level in settings.levels
        )
        if budgets
        else [],
    )
    try:
        await client.wait_healthy(timeout_s=settings.health_timeout_s, on_progress=hooks.on_health)
    except GptossModalError as exc:
        raise BenchmarkError(f"the server is not healthy: {exc}") from exc
    settings = await _with_model(settings, client)
    run.settings = settings
    run.vllm_version = await _vllm_version(client)
    prompts = PromptSet(settings)
    api: Api = "responses" if settings.api == "responses" else "chat"
    # Replies of agent turns end where the model stops (a call ends at <|call|>), and the
    # Responses API has no min_tokens: neither asks for fixed output lengths.
    fixed = settings.fixed_output and not settings.agentic and api == "chat"
    sender = Sender(client, settings.reasoning_effort, fixed, clock, api)
    probed = await probe(sender, prompts, settings)
    if probed.template_tokens is not None:
        prompts.calibrate(probed.template_tokens)
    run.template_tokens = probed.template_tokens
    run.fixed_output = probed.fixed_output
    run.warnings = list(probed.warnings)  # known now: an interrupted run keeps them
    if settings.fixed_output and not fixed:
        run.warnings.append(
            "output lengths are not fixed: "
            + ("agent turns end where the model stops" if settings.agentic else "")
            + (" and " if settings.agentic and api != "chat" else "")
            + ("the Responses API has no min_tokens" if api != "chat" else "")
        )
    scraper = MetricsScraper(client, enabled=settings.scrape_metrics)
    sender = Sender(client, settings.reasoning_effort, probed.fixed_output, clock, api)
    driver = Driver(settings, sender, prompts, scraper, sink, cpu_clock)
    for number, level in enumerate(settings.levels):
        limits = budgets.for_level(level.concurrency, level.rate) if budgets else None
        pattern, workload = _workload(settings, level, number, run.started_at)
        result = await driver.level(level, number, pattern, limits, workload)
        for warning in result.warnings:
            sink.note(f"{level.label}: warning: {warning}")
        run.levels.append(result)
        if hooks.on_level is not None:
            hooks.on_level(run)
    run.warnings += scraper.warnings
    run.finished_at = _now_iso()
    if run.all_failed:
        raise _all_failed(run)
    return run


def _workload(
    settings: BenchSettings, level: Level, number: int, run_id: str
) -> tuple[LoadPattern, Workload | None]:
    """Level ``number``'s load pattern, and for an agentic run its conversations."""
    if not settings.agentic:
        return load_pattern(settings, level, number), None
    choice: ToolChoice = "named" if settings.tool_choice == "named" else "auto"
    workload = AgenticWorkload(
        seed=settings.seed,
        level=number,
        tool_choice=choice,
        session_ids=settings.sends_session_ids,
        run_id=run_id.replace(":", "").replace("+", "").replace("-", ""),
    )
    pattern = AgenticLoad(
        workload, level.slots, settings.turns, settings.requests_for(level), settings.duration_s
    )
    return pattern, workload


async def _vllm_version(client: BenchClient) -> str | None:
    """The server's vLLM version from ``GET /version``; ``None`` when it does not say."""
    if not isinstance(client, ModelsClient):
        return None
    try:
        status, body = await client.call("GET", "/version", timeout_s=VERSION_TIMEOUT_S)
    except GptossModalError:
        return None
    try:
        data = json.loads(body) if status == 200 else None
    except ValueError:
        return None
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) and version else None


async def _with_model(settings: BenchSettings, client: BenchClient) -> BenchSettings:
    """The settings with the served model from ``/v1/models`` when none was given (and the
    client sends it from now on)."""
    if settings.model is not None or not isinstance(client, ModelsClient):
        return settings
    model = await served_model(client)
    if hasattr(client, "model"):
        client.model = model
    return dataclasses.replace(settings, model=model)


def _all_failed(run: BenchRun) -> AllRequestsFailed:
    kinds = collections.Counter[str]()
    for level_result in run.levels:
        kinds.update(level_result.summary.errors)
    detail = ", ".join(f"{kind} x{n}" for kind, n in kinds.most_common())
    return AllRequestsFailed(
        f"every request failed ({detail or 'no requests were sent'}); see the errors "
        "above and the per-request records",
        run,
    )
