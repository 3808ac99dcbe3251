"""``gptoss-modal bench``: the load benchmark, and ``bench compare`` of two saved runs.

``gptoss-modal bench URL [options]`` (the same as ``bench run URL``) waits for the server, runs
each load level, prints the tables, and writes the JSON (``--json``) and the plot (``--plot``).
Its exit code says whether the budgets held: 0 they held (or none were given), 1 a budget
failed, every request failed or the server could not be benchmarked, 2 bad usage (flags,
budgets file, prompts file), 130 interrupted (Ctrl-C: the levels that finished are printed and
written to ``--json`` first).

``gptoss-modal bench compare A.json B.json [--plot OUT.png]`` prints each metric's change from
run A to run B, level by level (exit 0, or 2 when a file is not a run).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
from typing import TYPE_CHECKING, Any

from gptoss_modal.cli import EXIT_FAILURE, EXIT_OK, cold_start
from gptoss_modal.cli._options import API_KEY_ENV, request_headers

if TYPE_CHECKING:
    from gptoss_modal.bench.budgets import Budgets
    from gptoss_modal.bench.cost import GpuPrice
    from gptoss_modal.bench.results import BenchRun
    from gptoss_modal.bench.run import AllRequestsFailed
    from gptoss_modal.bench.settings import BenchSettings

EPILOG = """\
examples:
  gptoss-modal bench http://127.0.0.1:8000 --concurrency 1,8,32 --requests 64 --json run.json
  gptoss-modal bench URL --rate 0.5,1,2 --concurrency 64 --duration 2m --budgets budgets.toml
  gptoss-modal bench URL --scenario agentic --turns 6 --concurrency 1,8 --api responses
  gptoss-modal bench compare before.json after.json --plot change.png

metrics, the percentile method and the budgets file: docs/benchmark.md
"""


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    """Register the ``bench`` group: ``bench [run] URL`` and ``bench compare A B``.

    A new ``bench`` subcommand is one more ``register_*`` function in :data:`SUBCOMMANDS`;
    ``gptoss_modal.cli.DEFAULT_SUBCOMMANDS`` makes ``bench URL`` mean ``bench run URL``.
    """
    group = subparsers.add_parser(
        "bench",
        help="load-test a server: TTFT, TPOT, ITL, throughput, budgets (or compare two runs)",
        description=(
            "Load-test an OpenAI-compatible vLLM server (`gptoss-modal bench URL`, the same as\n"
            "`bench run URL`), or compare two saved runs (`bench compare A.json B.json`).\n"
            "`gptoss-modal bench SUBCOMMAND --help` shows each one's options."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = group.add_subparsers(dest="bench_command", metavar="SUBCOMMAND", required=True)
    for register_one in SUBCOMMANDS:
        register_one(commands)


def register_run(commands: argparse._SubParsersAction[Any]) -> None:
    """``bench [run] URL``: the load benchmark."""
    p = commands.add_parser(
        "run",
        prog="gptoss-modal bench [run]",
        help="load-test URL level by level (the default: `bench URL` is `bench run URL`)",
        description=(
            "Load-test an OpenAI-compatible vLLM server level by level (closed-loop concurrency "
            "or open-loop Poisson arrivals) and report TTFT three ways, TPOT, per-token ITL, "
            "end-to-end latency, throughput, goodput and spec-decode acceptance."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("url", metavar="URL", help="the server's root URL")
    p.add_argument("--model", help="served model name (default: the one /v1/models lists)")
    p.add_argument("--api-key", help=f"the server's API key (default: ${API_KEY_ENV})")
    p.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="an extra header on every request, e.g. Modal-Key:... (repeatable)",
    )
    _load_options(p)
    out = p.add_argument_group("output and budgets")
    out.add_argument(
        "--budgets", metavar="FILE.toml", help="latency budgets (see budgets.example.toml)"
    )
    out.add_argument(
        "--gpu",
        metavar="GPU[:N]",
        help="the GPU (B200, H200, H100; priced per level) and the budgets file's section",
    )
    out.add_argument("--json", metavar="OUT.json", help="write every request and the summary here")
    out.add_argument("--plot", metavar="OUT.png", help="plot latency and throughput against load")
    out.add_argument("--quiet", action="store_true", help="no progress bar or health messages")
    conn = p.add_argument_group("connection")
    conn.add_argument("--wait", default="20m", help="how long to wait for /health (default 20m)")
    conn.add_argument(
        "--stall-timeout", default="120s", help="fail a request after no bytes for this long (120s)"
    )
    conn.add_argument("--no-metrics", action="store_true", help="do not scrape /metrics")
    _cost_and_format_options(p)
    _scenario_options(p)
    p.set_defaults(func=bench)


def _scenario_options(p: argparse.ArgumentParser) -> None:
    """``--scenario``, ``--api``, ``--turns``, ``--tool-choice`` and ``--session-id``."""
    from gptoss_modal.bench.settings import APIS, DEFAULT_TURNS, SCENARIOS, TOOL_CHOICES

    s = p.add_argument_group("scenario and API")
    s.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="chat",
        help="chat: single-turn requests (default); agentic: each virtual user runs multi-turn "
        "tool-calling conversations whose history grows turn by turn",
    )
    s.add_argument(
        "--api",
        choices=APIS,
        default="chat",
        help="send through /v1/chat/completions (default) or /v1/responses",
    )
    s.add_argument(
        "--turns",
        type=int,
        default=DEFAULT_TURNS,
        help=f"agentic: requests per conversation (default {DEFAULT_TURNS})",
    )
    s.add_argument(
        "--tool-choice",
        choices=TOOL_CHOICES,
        default="auto",
        help="agentic: a user turn's tool_choice, auto (default) or naming the tool it asks for",
    )
    s.add_argument(
        "--session-id",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="send Modal-Session-ID, one per virtual user, so Modal routes a conversation to "
        "the replica holding its prefix cache (default: on for agentic, off for chat)",
    )


# --- issue 14: cost, the vLLM result format and vLLM's flag spellings -------------------------


def _cost_and_format_options(p: argparse.ArgumentParser) -> None:
    """``--gpu-count``, ``--gpu-price``, ``--compare-price`` and ``--format``."""
    cost = p.add_argument_group("cost (with --gpu)")
    cost.add_argument("--gpu-count", type=int, help="GPUs serving the model (default 1, or :N)")
    cost.add_argument(
        "--gpu-price",
        metavar="USD",
        help="dollars per GPU-second (0.001736) or GPU-hour (6.25/h); default: Modal's "
        "billing API with credentials, else the list price",
    )
    cost.add_argument(
        "--compare-price",
        metavar="USD/M",
        help="a hosted price per million output tokens to hold each level against, e.g. 0.19/M",
    )
    p.add_argument(
        "--format",
        choices=("gptoss", "vllm"),
        default="gptoss",
        help="what --json writes: this tool's document (default) or one `vllm bench serve "
        "--save-result` object per level, one per line",
    )


def _price(args: argparse.Namespace) -> GpuPrice | None:
    """The GPUs' price (``--gpu``, ``--gpu-count``, ``--gpu-price``), or ``None``: not priced
    (no ``--gpu``, or a budgets section that is not a GPU we have a price for)."""
    from gptoss_modal.bench.cost import (
        LIST_PRICES_USD_PER_S,
        parse_gpu,
        parse_gpu_price,
        resolve_price,
    )

    override = parse_gpu_price(args.gpu_price) if args.gpu_price else None
    if not args.gpu:
        if override is not None or args.gpu_count is not None:
            from gptoss_modal._exceptions import ConfigError

            flag = "--gpu-price" if override is not None else "--gpu-count"
            raise ConfigError(flag, None, "--gpu", message=f"{flag} needs --gpu (e.g. B200)")
        return None
    name, count = parse_gpu(args.gpu, args.gpu_count)
    if override is None and name not in LIST_PRICES_USD_PER_S and args.budgets:
        return None  # a budgets section such as "mock": not a GPU with a price
    notes: list[str] = []
    price = resolve_price(name, count, override_usd_per_s=override, notes=notes)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return price


def _load_options(p: argparse.ArgumentParser) -> None:
    """The load (levels, size, warm-up, seed) and request-shape options of ``bench run``."""
    load = p.add_argument_group("load")
    load.add_argument(
        "--concurrency",
        "--max-concurrency",  # vLLM's spelling
        help="closed-loop levels, e.g. 1,8,32 (default); with --rate, the in-flight cap",
    )
    load.add_argument(
        "--rate",
        "--request-rate",  # vLLM's spelling; inf means closed loop, as in vLLM
        help="open-loop Poisson arrivals per second, e.g. 2 or 0.5,1,2",
    )
    size = load.add_mutually_exclusive_group()
    size.add_argument(
        "--requests",
        "--num-prompts",  # vLLM's spelling
        type=int,
        help="measured requests per level (default 4/slot)",
    )
    size.add_argument("--duration", help="send requests for this long per level, e.g. 60s, 2m")
    load.add_argument(
        "--warmup", type=int, help="uncounted requests before each level (default: one per slot)"
    )
    load.add_argument(
        "--seed", type=int, default=0, help="seed for prompts and arrivals (default 0)"
    )
    req = p.add_argument_group("requests")
    req.add_argument(
        "--input-tokens", type=int, default=1024, help="synthetic prompt length (default 1024)"
    )
    req.add_argument(
        "--output-tokens", type=int, default=1024, help="tokens per reply (default 1024)"
    )
    req.add_argument(
        "--no-fixed-output",
        action="store_true",
        help="do not send ignore_eos/min_tokens (replies end where the model stops)",
    )
    req.add_argument(
        "--reasoning-effort",
        default="low",
        choices=("low", "medium", "high"),
        help="gpt-oss reasoning effort (default low)",
    )
    req.add_argument(
        "--prompts",
        "--dataset-path",  # vLLM's spelling
        metavar="FILE",
        help='prompts: JSONL of {"messages": [...]} or {"prompt": "..."}, or ShareGPT',
    )


def register_compare(commands: argparse._SubParsersAction[Any]) -> None:
    """``bench compare A.json B.json [--plot OUT.png]``."""
    p = commands.add_parser(
        "compare",
        prog="gptoss-modal bench compare",
        help="print each metric's change from run A to run B (saved with --json)",
        description=(
            "Print the change of each metric from run A to run B, level by level; with --plot, "
            "draw both runs on the same axes."
        ),
    )
    p.add_argument("a", metavar="A.json", help="the run before (saved by `bench URL --json`)")
    p.add_argument("b", metavar="B.json", help="the run after")
    p.add_argument("--plot", metavar="OUT.png", help="plot both runs against load")
    p.set_defaults(func=compare)


# The bench subcommands, in the order their help lists them.
SUBCOMMANDS = (register_run, register_compare, cold_start.register)


def compare(args: argparse.Namespace) -> int:
    """Print the change of each metric from run A to run B (and plot both with --plot)."""
    from gptoss_modal.bench.report import render_comparison
    from gptoss_modal.bench.schema import read_run

    if args.plot:
        from gptoss_modal.bench.plot import require_matplotlib

        require_matplotlib()  # before reading anything: say so at once
    a_path, b_path = args.a, args.b
    a, b = read_run(a_path), read_run(b_path)
    if args.plot:
        from gptoss_modal.bench.plot import plot_runs

        plot_runs([(os.path.basename(a_path), a), (os.path.basename(b_path), b)], args.plot)
    print(render_comparison(a, b, a_path, b_path))
    if args.plot:
        print(f"\nplot: {args.plot}")
    return EXIT_OK


def _settings(args: argparse.Namespace) -> BenchSettings:
    """The run's settings from the flags (a ConfigError naming the flag for a bad one)."""
    from gptoss_modal.bench.prompts import load_dataset
    from gptoss_modal.bench.settings import BenchSettings, parse_duration, parse_levels

    dataset = load_dataset(args.prompts) if args.prompts else None
    if dataset is not None and dataset.skipped:
        print(
            f"note: {args.prompts}: {dataset.skipped} conversations without a user turn skipped",
            file=sys.stderr,
        )
    prompts = dataset.prompts if dataset is not None else None
    price = _price(args)
    if args.format == "vllm" and not args.json:
        from gptoss_modal._exceptions import ConfigError

        raise ConfigError("--format", "vllm", "--json", message="--format vllm needs --json OUT")
    compare = None
    if args.compare_price:
        from gptoss_modal.bench.cost import parse_mtok_price

        compare = parse_mtok_price(args.compare_price)
    return BenchSettings(
        url=args.url,
        model=args.model or None,
        api_key=args.api_key or os.environ.get(API_KEY_ENV) or None,
        headers=request_headers(args.header, os.environ),  # + Modal proxy auth from env
        # vLLM's --request-rate inf is its closed loop: here, no --rate.
        levels=parse_levels(args.concurrency, None if args.rate == "inf" else args.rate),
        requests=args.requests,
        duration_s=parse_duration(args.duration) if args.duration else None,
        input_tokens=args.input_tokens,
        output_tokens=args.output_tokens,
        fixed_output=not args.no_fixed_output,
        reasoning_effort=args.reasoning_effort,
        prompts=prompts,
        prompts_source=args.prompts,
        seed=args.seed,
        warmup=args.warmup,
        health_timeout_s=parse_duration(args.wait, "--wait"),
        stall_timeout_s=parse_duration(args.stall_timeout, "--stall-timeout"),
        scrape_metrics=not args.no_metrics,
        price=price,
        compare_usd_per_mtok=compare,
        dataset=dataset.format if dataset is not None else None,
        scenario=args.scenario,
        api=args.api,
        turns=args.turns,
        tool_choice=args.tool_choice,
        session_ids=args.session_id,
    )


def _budgets(args: argparse.Namespace) -> Budgets | None:
    """The budgets section the run is held to (``--budgets`` and ``--gpu``), if any."""
    from gptoss_modal.bench.budgets import load_budgets

    if not args.budgets:
        return None  # --gpu alone prices the run (see _price)
    budgets_file = load_budgets(args.budgets)
    section = args.gpu
    if section and section not in budgets_file.sections:
        section = section.partition(":")[0]  # B200:2 picks [B200]
    return budgets_file.section(section)


def _write_json(args: argparse.Namespace, result: BenchRun) -> None:
    """``--json`` in the chosen ``--format``."""
    if args.format == "vllm":
        from gptoss_modal.bench.vllm_format import write_vllm

        write_vllm(result, args.json)
    else:
        result.write_json(args.json)


def _all_failed(args: argparse.Namespace, exc: AllRequestsFailed) -> int:
    """Write and print what an all-failed run has; exit 1."""
    from gptoss_modal.bench.report import render_run

    if args.json:
        _write_json(args, exc.run)
        print(f"json: {args.json}", file=sys.stderr)
    print(render_run(exc.run.to_doc(records=False)))
    for warning in exc.run.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"\ngptoss-modal bench: error: {exc}", file=sys.stderr)
    return EXIT_FAILURE


def _interrupted(args: argparse.Namespace, settings: BenchSettings, run: BenchRun | None) -> int:
    """Ctrl-C: print, write and plot the levels that finished, then exit 130."""
    from gptoss_modal.bench.report import render_run
    from gptoss_modal.cli import EXIT_INTERRUPTED

    if run is None or not run.levels:
        print("\ngptoss-modal bench: interrupted before any level finished", file=sys.stderr)
        return EXIT_INTERRUPTED
    missing = [level.label for level in settings.levels[len(run.levels) :]]
    run.warnings.append(
        f"interrupted (Ctrl-C): {len(run.levels)} of {len(settings.levels)} levels measured; "
        f"not measured: {', '.join(missing)}"
    )
    run.finished_at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    print(render_run(run.to_doc(records=False)))
    for warning in run.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        run.write_json(args.json)
        print(f"\njson: {args.json}")
    if args.plot:
        from gptoss_modal.bench.plot import plot_runs

        plot_runs([(settings.url, run.to_doc(records=False))], args.plot)
        print(f"plot: {args.plot}")
    return EXIT_INTERRUPTED


def bench(args: argparse.Namespace) -> int:
    """Run the benchmark; the exit code says whether every budget held (130: interrupted,
    after printing and writing the levels that finished)."""
    from gptoss_modal.bench.progress import SilentProgress
    from gptoss_modal.bench.report import render_run
    from gptoss_modal.bench.run import AllRequestsFailed, run_benchmark
    from gptoss_modal.display import TerminalProgress

    # Everything that can be wrong with the flags and files fails now, before a long run.
    if args.plot:
        from gptoss_modal.bench.plot import require_matplotlib

        require_matplotlib()
    budgets = _budgets(args)
    settings = _settings(args)
    finished: list[BenchRun] = []  # the run so far, after each level: what Ctrl-C keeps

    def keep(run: BenchRun) -> None:
        finished[:] = [run]

    terminal = TerminalProgress(sys.stderr)
    try:
        with terminal:
            result = asyncio.run(
                run_benchmark(
                    settings,
                    budgets=budgets,
                    progress=SilentProgress() if args.quiet else terminal,
                    on_health=None
                    if args.quiet
                    else terminal.health_callback(settings.url, settings.health_timeout_s),
                    on_level=keep,
                )
            )
    except KeyboardInterrupt:
        return _interrupted(args, settings, finished[0] if finished else None)
    except AllRequestsFailed as exc:
        return _all_failed(args, exc)
    doc = result.to_doc(records=False)
    print(render_run(doc))
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        _write_json(args, result)
        print(f"\njson: {args.json}")
    if args.plot:
        from gptoss_modal.bench.plot import plot_runs

        plot_runs([(settings.url, doc)], args.plot)
        print(f"plot: {args.plot}")
    if result.budgets_held is False:
        print("gptoss-modal bench: budgets failed (see above)", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK
