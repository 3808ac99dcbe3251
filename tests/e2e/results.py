"""What an e2e run found: measurements, budget checks and test outcomes, as JSON and a summary.

Every string that goes in passes through a redactor holding the run's API key, so neither the
JSON file nor the terminal summary can show it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gptoss_modal.bench.budgets import BudgetCheck
from gptoss_modal.deploy.launch import Redactor


@dataclass
class E2EResults:
    """Collected during the run; written and summarised at its end."""

    app_name: str
    gpu: str
    started_at: float = field(default_factory=time.time)
    deployment: dict[str, Any] = field(default_factory=dict)
    measurements: dict[str, float] = field(default_factory=dict)
    checks: list[BudgetCheck] = field(default_factory=list)
    budget_source: str | None = None
    outcomes: dict[str, str] = field(default_factory=dict)  # test id -> passed/failed/...
    notes: list[str] = field(default_factory=list)
    _redact: Redactor = field(default_factory=lambda: Redactor(()), repr=False)

    def hide(self, *secrets: str) -> None:
        """Redact these values from everything recorded from now on (and already recorded)."""
        self._redact = Redactor(secrets)
        self.notes = [self._redact(n) for n in self.notes]

    def note(self, text: str) -> None:
        self.notes.append(self._redact(text))

    def outcome(self, test_id: str, outcome: str) -> None:
        self.outcomes[test_id] = outcome

    @property
    def ran(self) -> bool:
        """Whether any e2e test got past being skipped."""
        return any(o != "skipped" for o in self.outcomes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "app_name": self.app_name,
            "gpu": self.gpu,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            "deployment": self.deployment,
            "measurements": self.measurements,
            "budget_source": self.budget_source,
            "budgets": [
                {"key": c.key, "limit": c.limit, "measured": c.measured, "passed": c.passed}
                for c in self.checks
            ],
            "outcomes": self.outcomes,
            "notes": self.notes,
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = self._redact(json.dumps(self.to_dict(), indent=2, sort_keys=True))
        path.write_text(text + "\n")

    def summary_lines(self) -> list[str]:
        passed = sum(o == "passed" for o in self.outcomes.values())
        lines = [
            f"gptoss-modal e2e on {self.gpu} (app {self.app_name!r}): "
            f"{passed}/{len(self.outcomes)} tests passed"
        ]
        lines += [f"  {name} = {value:.4g}" for name, value in sorted(self.measurements.items())]
        lines += [f"  {check_line(check)}" for check in self.checks]
        if self.budget_source:
            lines.append(f"  budgets: {self.budget_source[:160]}...")
        lines += [f"  note: {note}" for note in self.notes]
        return [self._redact(line) for line in lines]


def check_line(check: BudgetCheck) -> str:
    """``[ok  ] ttft_p95_ms: 412.3 (budget <= 2000)`` for one budget check."""
    bound = "<=" if check.kind == "max" else ">="
    shown = "not measured" if check.measured is None else f"{check.measured:.4g}"
    mark = "ok  " if check.passed else "FAIL"
    return f"[{mark}] {check.key}: {shown} (budget {bound} {check.limit:g})"
