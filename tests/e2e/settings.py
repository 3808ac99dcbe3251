"""What the e2e suite deploys and where it keeps its numbers, from ``GPTOSS_E2E_*`` variables.

The app under test is the real app, run ephemerally under its own name and its own API-key
Secret (created with a fresh random key, deleted afterwards), with at most one container so a
mistake cannot scale a bill. The serve config is the user's (``GPTOSS_CONFIG`` / ``GPTOSS_*``),
except the GPU when ``GPTOSS_E2E_GPU`` is set, and tool calling, which is turned on because the
contract suite that runs against the deployment tests it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gptoss_modal import load_config
from gptoss_modal.deploy import load_deploy_settings

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BUDGETS = Path(__file__).with_name("budgets.toml")
DEFAULT_RESULTS = ROOT / "build" / "e2e" / "results.json"  # the load run goes beside it


@dataclass(frozen=True)
class E2ESettings:
    """The e2e run's knobs."""

    app_name: str = "gptoss-e2e"
    secret_name: str = "gptoss-e2e-api-key"
    gpu: str = "B200:1"
    budgets_path: Path = DEFAULT_BUDGETS
    results_path: Path = DEFAULT_RESULTS
    # Measured one-at-a-time requests behind the level-1 budgets: 20 so that a p95 is not
    # simply the slowest request (the 19th of 20 sorted values is what p95 reads).
    warm_requests: int = 20
    input_tokens: int = 256  # prompt length of each of them
    output_tokens: int = 256  # fixed output length (ignore_eos) of each of them
    scaledown_window_s: int = 120  # the test container stops soon after the suite

    @property
    def gpu_type(self) -> str:
        """The GPU type (``B200``): the budgets section to use."""
        return self.gpu.partition(":")[0]

    @property
    def bench_path(self) -> Path:
        """Where the level-1 load run's own JSON goes (every request's record)."""
        return self.results_path.with_name("bench.json")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> E2ESettings:
        env = os.environ if env is None else env
        gpu = env.get("GPTOSS_E2E_GPU") or load_config(env=env).gpu
        return cls(
            app_name=env.get("GPTOSS_E2E_APP_NAME", cls.app_name),
            secret_name=env.get("GPTOSS_E2E_SECRET_NAME", cls.secret_name),
            gpu=gpu,
            budgets_path=Path(env.get("GPTOSS_E2E_BUDGETS", str(DEFAULT_BUDGETS))),
            results_path=Path(env.get("GPTOSS_E2E_RESULTS", str(DEFAULT_RESULTS))),
            warm_requests=int(env.get("GPTOSS_E2E_WARM_REQUESTS", cls.warm_requests)),
        )

    def startup_timeout_s(self, env: Mapping[str, str] | None = None) -> int:
        """The app's start-up timeout under the test's deploy settings (offline)."""
        env = os.environ if env is None else env
        return load_deploy_settings(env={**env, **self.app_env()}).startup_timeout_s

    def app_env(self) -> dict[str, str]:
        """The ``GPTOSS_*`` deploy settings the app under test is imported with."""
        return {
            "GPTOSS_APP_NAME": self.app_name,
            "GPTOSS_AUTH": "api_key",
            "GPTOSS_SECRET_NAME": self.secret_name,
            "GPTOSS_GPU": self.gpu,
            "GPTOSS_MIN_CONTAINERS": "0",
            "GPTOSS_MAX_CONTAINERS": "1",
            "GPTOSS_SCALEDOWN_WINDOW_S": str(self.scaledown_window_s),
            "GPTOSS_PREFLIGHT": "strict",
            # --enable-auto-tool-choice --tool-call-parser openai: the contract suite calls tools
            "GPTOSS_TOOL_CALLING": "true",
        }
