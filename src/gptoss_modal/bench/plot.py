"""The benchmark's PNG: latency percentiles and throughput against load, one colour per run.

matplotlib is an optional extra (``pip install 'gptoss-modal[plot]'``) and is imported only
when a plot is made; without it :func:`require_matplotlib` raises a :class:`ConfigError` that
says how to install it. The figure is made from the runs' documents
(:class:`gptoss_modal.bench.schema.RunDoc`), so two saved runs can be drawn on the same axes
(``gptoss-modal bench compare A.json B.json --plot OUT.png``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.bench.schema import RunDoc, SummaryDoc

__all__ = ["plot_runs", "require_matplotlib"]

INSTALL_HINT: Final = "install it with pip install 'gptoss-modal[plot]'"
# (title, [(metric, stat, line style)]) for the three latency panels.
_PANELS: Final = (
    (
        "time to first token (ms)",
        (("ttft", "p50", "-"), ("ttft", "p99", "--"), ("ttft_chunk", "p50", ":")),
    ),
    ("per output token (ms)", (("tpot", "p50", "-"), ("itl", "p50", "-."), ("itl", "p99", "--"))),
    ("end to end (ms)", (("e2e", "p50", "-"), ("e2e", "p99", "--"))),
)


def require_matplotlib(field: str = "--plot") -> None:
    """Raise :class:`ConfigError` now (before a long run) when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            field, "png", INSTALL_HINT, message=f"{field} needs matplotlib: {INSTALL_HINT}"
        ) from exc


def _x(summary: SummaryDoc) -> float:
    level = summary.level
    return float(level.rate if level.rate is not None else (level.concurrency or 0))


def _y(summary: SummaryDoc, metric: str, stat: str) -> float:
    dist = summary.latency_ms.get(metric)
    value = dist.stat(stat) if dist is not None else None
    return float("nan") if value is None else value


def plot_runs(runs: Sequence[tuple[str, RunDoc]], path: str | Path) -> None:
    """Draw ``(name, document)`` runs into one PNG at ``path``."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
    panels = [axes[0][0], axes[0][1], axes[1][0]]
    throughput = axes[1][1]
    rates = throughput.twinx()  # requests/s and goodput on the right-hand axis
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    open_loop = False
    xs_all: list[float] = []
    for number, (run_name, doc) in enumerate(runs):
        colour = colours[number % len(colours)]
        name = run_name if len(runs) > 1 else ""  # one run: the title names it
        summaries = sorted((lv.summary for lv in doc.levels), key=_x)
        if not summaries:
            continue
        open_loop = open_loop or summaries[0].level.rate is not None
        xs = [_x(s) for s in summaries]
        xs_all += xs
        for ax, (_, lines) in zip(panels, _PANELS, strict=True):
            for metric, stat, style in lines:
                ys = [_y(s, metric, stat) for s in summaries]
                ax.plot(
                    xs, ys, style, marker="o", color=colour, label=f"{name} {metric} {stat}".strip()
                )
        throughput.plot(
            xs,
            [s.output_tokens_per_s for s in summaries],
            "-",
            marker="o",
            color=colour,
            label=f"{name} output tokens/s".strip(),
        )
        rates.plot(
            xs,
            [s.requests_per_s for s in summaries],
            ":",
            marker="s",
            color=colour,
            label=f"{name} requests/s".strip(),
        )
        goodput = [s.goodput.per_s if s.goodput else None for s in summaries]
        if any(g is not None for g in goodput):
            rates.plot(
                xs,
                [float("nan") if g is None else g for g in goodput],
                "-.",
                marker="s",
                color=colour,
                label=f"{name} goodput (requests/s)".strip(),
            )
    xlabel = "request rate (requests/s)" if open_loop else "concurrency (requests in flight)"
    spread = max(xs_all) / min(xs_all) if xs_all and min(xs_all) > 0 else 1.0
    for ax, title in (
        *zip(panels, (p[0] for p in _PANELS), strict=True),
        (throughput, "throughput (tokens/s)"),
    ):
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        if spread >= 4:
            ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(set(xs_all)))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0, top=ax.get_ylim()[1] * 1.25)  # room for the legend
        ax.legend(fontsize=7, loc="upper left")
    rates.set_ylabel("requests/s")
    rates.set_ylim(bottom=0, top=rates.get_ylim()[1] * 1.25)
    rates.legend(fontsize=7, loc="upper right")
    throughput.set_ylabel("output tokens/s")
    fig.suptitle("gptoss-modal bench: " + " vs ".join(name for name, _ in runs))
    fig.savefig(path, dpi=110)
    plt.close(fig)
