"""Measuring a server: the load benchmark, its result document, statistics, budgets and report.

``await run_benchmark(BenchSettings(url))`` runs load levels against an OpenAI-compatible
server; the run's typed JSON document is :class:`RunDoc` (schema :data:`SCHEMA`). Importing
this package loads neither aiohttp (the client is made when a run starts) nor matplotlib (only
when a plot is drawn).
"""

from gptoss_modal.bench.budgets import (
    BudgetCheck,
    Budgets,
    BudgetsFile,
    evaluate_budgets,
    load_budgets,
    parse_budgets,
)
from gptoss_modal.bench.driver import Probe
from gptoss_modal.bench.loads import ClosedLoop, LoadPattern, OpenLoop
from gptoss_modal.bench.plot import plot_runs, require_matplotlib
from gptoss_modal.bench.progress import LiveStats, Progress, SilentProgress
from gptoss_modal.bench.prompts import load_prompts, synthetic_messages
from gptoss_modal.bench.records import RequestRecord, error_kind
from gptoss_modal.bench.report import compare_runs, render_comparison, render_run
from gptoss_modal.bench.results import CLIENT_BOUND_FRACTION, BenchRun, LevelResult
from gptoss_modal.bench.run import AllRequestsFailed, run_benchmark
from gptoss_modal.bench.schema import SCHEMA, RunDoc, SummaryDoc, decode_run, read_run
from gptoss_modal.bench.settings import BenchSettings, Level, parse_duration, parse_levels
from gptoss_modal.bench.stats import LevelSummary, percentile
from gptoss_modal.bench.workload import BenchClient, BenchStream

__all__ = [
    "CLIENT_BOUND_FRACTION",
    "SCHEMA",
    "AllRequestsFailed",
    "BenchClient",
    "BenchRun",
    "BenchSettings",
    "BenchStream",
    "BudgetCheck",
    "Budgets",
    "BudgetsFile",
    "ClosedLoop",
    "Level",
    "LevelResult",
    "LevelSummary",
    "LiveStats",
    "LoadPattern",
    "OpenLoop",
    "Probe",
    "Progress",
    "RequestRecord",
    "RunDoc",
    "SilentProgress",
    "SummaryDoc",
    "compare_runs",
    "decode_run",
    "error_kind",
    "evaluate_budgets",
    "load_budgets",
    "load_prompts",
    "parse_budgets",
    "parse_duration",
    "parse_levels",
    "percentile",
    "plot_runs",
    "read_run",
    "render_comparison",
    "render_run",
    "require_matplotlib",
    "run_benchmark",
    "synthetic_messages",
]
