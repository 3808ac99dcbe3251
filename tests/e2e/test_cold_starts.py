"""Cold starts of a *deployed* app, with and without the GPU snapshot, measured and budgeted.

GPU snapshots exist only for deployed apps (not ``app.run()``), so each start mode is deployed
under its own name, measured with ``bench cold-start``'s own code (wait until the function has
no container, then time /health, first token and first content from the first request), and
stopped. The first few snapshot starts build the snapshot, so the snapshot mode's samples
include them; its budget uses the p50. Opt-in: ``GPTOSS_E2E_COLD_STARTS=1`` (each sample waits
out the scale-down window; the whole test takes ~30 minutes of wall time and several GPU
starts). Both modes' summaries go into the e2e results under ``cold_starts``.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
from typing import Any

import pytest

from gptoss_modal.bench.budgets import Budgets, evaluate_cold_starts
from gptoss_modal.bench.cold_start import measure_cold_starts, runners_idle
from tests.e2e.results import E2EResults, check_line
from tests.e2e.settings import E2ESettings

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        os.environ.get("GPTOSS_E2E_COLD_STARTS") != "1",
        reason="cold starts are opt-in: GPTOSS_E2E_COLD_STARTS=1 (several GPU starts, ~30 min)",
    ),
]

# Samples per mode: Modal needs a few cold starts to build the snapshot (a public write-up saw
# 3-5), so the snapshot mode takes more, and its budgets hold the p50 (the later samples).
COLD_START_RUNS = {"plain": 3, "snapshot": 6}
IDLE_TIMEOUT_S = 30 * 60  # waiting for the last container to scale down


def _web_function(app_module: Any, mode: str) -> Any:
    """The deployed object serving the URL: the function (plain) or the class's service."""
    if mode == "plain":
        return app_module.serve
    return app_module.Server._get_class_service_function()


async def _measure(app_module: Any, mode: str, api_key: str) -> dict[str, Any]:
    web = _web_function(app_module, mode)
    if mode == "plain":
        url = await web.get_web_url.aio()
    else:
        url = await app_module.Server().serve.get_web_url.aio()

    async def count_runners() -> int:
        return int((await web.get_current_stats.aio()).num_total_runners)

    run = await measure_cold_starts(
        url,
        make_cold=runners_idle(count_runners, what=f"{mode} app", timeout_s=IDLE_TIMEOUT_S),
        runs=COLD_START_RUNS[mode],
        api_key=api_key,
        model="llm",
        start_mode=mode,
        poll_s=1.0,
        on_sample=lambda i, s: print(f"e2e: {mode} cold start {i + 1}: {s}", flush=True),
    )
    return run.to_json()


@pytest.mark.parametrize("mode", ["plain", "snapshot"])
def test_cold_starts_are_measured_and_within_budget(
    mode: str,
    e2e_settings: E2ESettings,
    results: E2EResults,
    budgets: Budgets,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deploy in this start mode, measure cold starts, record them, hold the mode's budgets."""
    import secrets

    import modal

    from gptoss_modal.deploy import API_KEY_ENV

    api_key = secrets.token_urlsafe(32)
    results.hide(api_key)
    name = f"{e2e_settings.app_name}-{mode}"
    secret = f"{e2e_settings.secret_name}-{mode}"
    modal.Secret.objects.delete(secret, allow_missing=True)
    modal.Secret.objects.create(secret, {API_KEY_ENV: api_key})
    env = {**e2e_settings.app_env(), "GPTOSS_APP_NAME": name, "GPTOSS_SECRET_NAME": secret}
    env["GPTOSS_COLD_START"] = mode
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delitem(sys.modules, "gptoss_modal.app", raising=False)
    app_module = importlib.import_module("gptoss_modal.app")
    try:
        with modal.enable_output():
            app_module.app.deploy(name=name)
        measured = asyncio.run(_measure(app_module, mode, api_key))
    finally:
        app_module.app.stop()
        modal.Secret.objects.delete(secret, allow_missing=True)
    results.deployment.setdefault("cold_starts", {})[mode] = measured
    checks = evaluate_cold_starts(budgets, mode, measured["summary"])
    results.checks.extend(checks)
    failed = [check_line(c) for c in checks if not c.passed]
    assert not any(s["error"] for s in measured["samples"]), measured["samples"]
    assert failed == [], failed
