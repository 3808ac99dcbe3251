"""The benchmark's PNG: the trade-off curve, latencies, distributions, throughput and cost.

Six panels, one colour per run: per-user output tokens/s against output tokens/s per GPU (one
point per level: the curve a deployment picks its operating point on); time to first token
and to first content (gpt-oss reasons first, so a user waits for the second); per-token
latency; each level's end-to-end distribution (min, p50, p90, p99, max); throughput against
load; and dollars per million tokens against load when the run has cost figures (each level
summary's ``cost``: ``usd_per_mtok_output`` and ``usd_per_mtok_total``), else a note saying to
run with ``--gpu``. An agentic run (levels with per-turn numbers) gets a third row: prompt and
cached prompt tokens per turn (the history growing), p50 TTFT per turn, and each level's
invalid tool-call rate with its 95% Wilson interval. The title names the model, and the GPU
and vLLM version where the run recorded them. Legends sit below their panel, never over the
data.

matplotlib is an optional extra (``pip install 'gptoss-modal[plot]'``) and is imported only
when a plot is made; without it :func:`require_matplotlib` raises a :class:`ConfigError` that
says how to install it. The figure is made from the runs' documents
(:class:`gptoss_modal.bench.schema.RunDoc`), so two saved runs can be drawn on the same axes
(``gptoss-modal bench compare A.json B.json --plot OUT.png``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from gptoss_modal._exceptions import ConfigError
from gptoss_modal.bench.schema import RunDoc, SummaryDoc

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["NO_COST", "cost_of", "plot_runs", "require_matplotlib", "title_of"]

INSTALL_HINT: Final = "install it with pip install 'gptoss-modal[plot]'"
NO_COST: Final = "no cost: run with --gpu"
FIGSIZE_IN: Final = (16.0, 9.5)
AGENTIC_FIGSIZE_IN: Final = (16.0, 14.0)  # a third row of panels
DPI: Final = 110
# (title, [(metric, stat, line style)]) for the two latency-against-load panels.
_TTFT_LINES: Final = (
    ("ttft", "p50", "-"),
    ("ttft", "p99", "--"),
    ("ttft_content", "p50", "-."),
    ("ttft_content", "p99", ":"),
)
_TOKEN_LINES: Final = (("tpot", "p50", "-"), ("itl", "p50", "-."), ("itl", "p99", "--"))
_COST_LINES: Final = (("usd_per_mtok_output", "-", "output"), ("usd_per_mtok_total", "--", "total"))


def require_matplotlib(field: str = "--plot") -> None:
    """Raise :class:`ConfigError` now (before a long run) when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            field, "png", INSTALL_HINT, message=f"{field} needs matplotlib: {INSTALL_HINT}"
        ) from exc


# --- what a document says -----------------------------------------------------------------------


def _field(obj: object, name: str) -> Any:
    """``obj.name`` or ``obj[name]``: fields other parts of the document may add (``cost``)."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def cost_of(summary: SummaryDoc, key: str) -> float | None:
    """A level's ``cost[key]`` in dollars per million tokens, ``None`` when not recorded."""
    value = _field(_field(summary, "cost"), key)
    return float(value) if isinstance(value, (int, float)) else None


def gpu_count(doc: RunDoc) -> int | None:
    """GPUs serving the run (``--gpu NAME:N`` or ``--gpu-count``), ``None`` when not recorded."""
    gpu = doc.settings.gpu
    return gpu.count if gpu is not None else None


def title_of(doc: RunDoc) -> str:
    """``openai/gpt-oss-20b · 1 x B200 · vLLM 0.33.0`` from what the run recorded; a missing
    fact says so, so a reader knows it is unknown rather than left out."""
    gpu = doc.settings.gpu
    version = _field(doc, "vllm_version") or _field(doc.settings, "vllm_version")
    return " · ".join(
        (
            f"{doc.settings.model or 'model not named'}",
            f"{gpu.count} x {gpu.name}" if gpu is not None else "GPU not recorded",
            f"vLLM {version}" if version else "vLLM version not recorded",
        )
    )


def _x(summary: SummaryDoc) -> float:
    level = summary.level
    return float(level.rate if level.rate is not None else (level.concurrency or 0))


def _stat(summary: SummaryDoc, metric: str, stat: str) -> float:
    dist = summary.latency_ms.get(metric)
    value = dist.stat(stat) if dist is not None else None
    return float("nan") if value is None else value


def _per_user(summary: SummaryDoc) -> float:
    """The median request's output tokens/s after its first token (1 / TPOT)."""
    dist = summary.stream_tokens_per_s
    return float("nan") if dist is None else dist.p50


def _nan(value: float | None) -> float:
    return float("nan") if value is None else value


# --- the figure ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Run:
    """One run as drawn: its legend name, colour and levels ordered by load. A lone run
    (``palette`` set) gives each line of a panel its own colour instead."""

    name: str
    colour: str
    summaries: list[SummaryDoc]
    palette: tuple[str, ...] = ()
    gpus: int | None = None  # GPUs serving the run, when recorded

    def label(self, what: str) -> str:
        return f"{self.name} {what}".strip()

    def line_colour(self, line: int) -> str:
        return self.palette[line % len(self.palette)] if self.palette else self.colour


def _headroom(ax: Axes, factor: float = 1.15) -> None:
    """Start the y axis at zero, with room above the highest point for its label."""
    top = ax.get_ylim()[1]
    ax.set_ylim(bottom=0, top=top * factor)


def _tradeoff(ax: Axes, runs: Sequence[_Run]) -> None:
    """Per-user speed against per-GPU throughput, each point named by its level."""
    for run in runs:
        xs = [s.output_tokens_per_s / (run.gpus or 1) for s in run.summaries]
        ys = [_per_user(s) for s in run.summaries]
        ax.plot(xs, ys, "-", marker="o", color=run.colour, label=run.label("levels"))
        for x, y, s in zip(xs, ys, run.summaries, strict=True):
            ax.annotate(
                s.level.label, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=7
            )
    counted = all(r.gpus for r in runs)
    ax.set_title("trade-off: speed per user against throughput per GPU")
    ax.set_xlabel(
        "output tokens/s per GPU" if counted else "output tokens/s (GPU count not recorded)"
    )
    ax.set_ylabel("output tokens/s per user (p50 of 1/TPOT)")
    ax.set_xlim(left=0, right=ax.get_xlim()[1] * 1.1)  # room for the last point's label
    _headroom(ax)


def _lines(ax: Axes, runs: Sequence[_Run], lines: Sequence[tuple[str, str, str]]) -> None:
    for run in runs:
        xs = [_x(s) for s in run.summaries]
        for line, (metric, stat, style) in enumerate(lines):
            ys = [_stat(s, metric, stat) for s in run.summaries]
            colour = run.line_colour(line)
            ax.plot(xs, ys, style, marker="o", color=colour, label=run.label(f"{metric} {stat}"))
    _headroom(ax)


def _distributions(ax: Axes, runs: Sequence[_Run]) -> None:
    """Each level's e2e latency: a box from p50 to p99, a tick at p90, whiskers min to max.

    The axis is fitted to the data, not started at zero: the spread is what it shows.
    """
    width = 0.7 / max(1, len(runs))
    labels: list[str] = []
    for number, run in enumerate(runs):
        for position, s in enumerate(run.summaries):
            if position >= len(labels):
                labels.append(s.level.label)
            dist = s.latency_ms.get("e2e")
            if dist is None:
                continue
            x = position + (number - (len(runs) - 1) / 2) * width
            ax.vlines(x, dist.min, dist.max, color=run.colour, linewidth=1)
            ax.bar(
                x, dist.p99 - dist.p50, width * 0.8, bottom=dist.p50, color=run.colour, alpha=0.35
            )
            ax.hlines(dist.p50, x - width * 0.4, x + width * 0.4, color=run.colour, linewidth=2)
            ax.hlines(dist.p90, x - width * 0.4, x + width * 0.4, color=run.colour, linestyle=":")
        ax.bar([], [], color=run.colour, alpha=0.35, label=run.label("p50 (line) to p99 (top)"))
    ax.plot([], [], ":", color="grey", label="p90")
    ax.plot([], [], "-", color="grey", linewidth=1, label="min to max")
    ax.set_xticks(range(len(labels)), labels)
    ax.set_title("end-to-end latency per level (ms)")
    ax.set_xlabel("level")


def _throughput(ax: Axes, runs: Sequence[_Run]) -> Axes | None:
    """Output tokens/s against load; with budgets, the share of requests within every limit
    on the right (requests/s would only be output tokens/s rescaled, one line over the other)."""
    with_goodput = any(s.goodput for run in runs for s in run.summaries)
    share = ax.twinx() if with_goodput else None
    for run in runs:
        xs = [_x(s) for s in run.summaries]
        ys = [s.output_tokens_per_s for s in run.summaries]
        ax.plot(xs, ys, "-", marker="o", color=run.colour, label=run.label("output tokens/s"))
        if share is not None:
            good = [s.goodput.fraction if s.goodput else None for s in run.summaries]
            percent = [float("nan") if g is None else 100 * g for g in good]
            label = run.label("goodput (% of requests within budget)")
            share.plot(xs, percent, "--", marker="x", color=run.line_colour(1), label=label)
    ax.set_title("throughput against load")
    ax.set_ylabel("output tokens/s")
    _headroom(ax)
    if share is not None:
        share.set_ylabel("goodput (% of requests)")
        share.set_ylim(0, 110)
    return share


def _cost(ax: Axes, runs: Sequence[_Run]) -> bool:
    """Dollars per million tokens against load; ``False`` (and the note) without cost."""
    drawn = False
    for run in runs:
        xs = [_x(s) for s in run.summaries]
        for line, (key, style, what) in enumerate(_COST_LINES):
            ys = [cost_of(s, key) for s in run.summaries]
            if all(y is None for y in ys):
                continue
            drawn = True
            colour = run.line_colour(line)
            ax.plot(
                xs, [_nan(y) for y in ys], style, marker="o", color=colour, label=run.label(what)
            )
    ax.set_title("cost per million tokens against load")
    if not drawn:
        ax.text(0.5, 0.5, NO_COST, ha="center", va="center", transform=ax.transAxes, fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
        return False
    ax.set_ylabel("USD per million tokens")
    _headroom(ax)
    return True


def _per_turn(ax: Axes, runs: Sequence[_Run], tokens: bool) -> None:
    """Per turn, one line per level: prompt (solid) and cached (dashed) tokens, or p50 TTFT."""
    line = 0
    for run in runs:
        for summary in run.summaries:
            turns = summary.turns
            if not turns:
                continue
            xs = [t.turn for t in turns]
            colour = run.line_colour(line)
            line += 1
            label = run.label(summary.level.label)
            if tokens:
                ys = [_nan(t.prompt_tokens_mean) for t in turns]
                ax.plot(xs, ys, "-", marker="o", color=colour, label=f"{label} prompt")
                cached = [t.cached_tokens_mean for t in turns]
                if any(c is not None for c in cached):
                    ys = [_nan(c) for c in cached]
                    ax.plot(xs, ys, "--", marker=".", color=colour, label=f"{label} cached")
            else:
                ys = [_nan(t.ttft_p50_ms) for t in turns]
                ax.plot(xs, ys, "-", marker="o", color=colour, label=label)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # turns are whole numbers
    ax.set_xlabel("turn (request) of the conversation")
    ax.set_ylabel("tokens (mean)" if tokens else "ms")
    ax.set_title("prompt and cached tokens per turn" if tokens else "TTFT p50 per turn (ms)")
    ax.set_ylim(bottom=0)


def _tool_calls(ax: Axes, runs: Sequence[_Run]) -> None:
    """Each level's invalid tool-call rate, with its 95% Wilson interval as the error bar."""
    for number, run in enumerate(runs):
        points = [(s, s.tool_calls) for s in run.summaries if s.tool_calls is not None]
        xs = [_x(s) for s, _ in points]
        rates = [_nan(c.invalid_rate) for _, c in points]
        low = [max(0.0, r - _nan(c.wilson_low)) for r, (_, c) in zip(rates, points, strict=True)]
        high = [max(0.0, _nan(c.wilson_high) - r) for r, (_, c) in zip(rates, points, strict=True)]
        ax.errorbar(
            xs,
            rates,
            yerr=[low, high],
            fmt="o",
            capsize=4,
            color=run.line_colour(number),
            label=run.label("invalid share (95% Wilson)"),
        )
    ax.set_title("invalid tool calls per level")
    ax.set_ylabel("share of tool calls")
    ax.set_ylim(bottom=0)


def _load_axis(ax: Axes, xs: Sequence[float], open_loop: bool) -> None:
    """The shared load axis: log 2 when the levels span 4x or more, a tick per level."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xlabel("request rate (requests/s)" if open_loop else "concurrency (requests in flight)")
    spread = max(xs) / min(xs) if xs and min(xs) > 0 else 1.0
    if spread >= 4:
        ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(set(xs)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _legend_below(ax: Axes, *extra: Axes) -> None:
    """The panel's legend under its x label, so it never covers a point."""
    handles, labels = ax.get_legend_handles_labels()
    for other in extra:
        more_handles, more_labels = other.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if handles:
        ax.legend(
            handles,
            labels,
            fontsize=7,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.2),
            ncol=2,
            frameon=False,
        )


def plot_runs(runs: Sequence[tuple[str, RunDoc]], path: str | Path) -> None:
    """Draw ``(name, document)`` runs into one PNG at ``path``."""
    require_matplotlib()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    lone = len(runs) == 1  # one run: the title names it, and each line has its own colour
    drawn = [
        _Run(
            "" if lone else name,
            colours[number % len(colours)],
            sorted((lv.summary for lv in doc.levels), key=_x),
            tuple(colours) if lone else (),
            gpu_count(doc),
        )
        for number, (name, doc) in enumerate(runs)
    ]
    drawn = [run for run in drawn if run.summaries]
    xs = [_x(s) for run in drawn for s in run.summaries]
    open_loop = any(run.summaries[0].level.rate is not None for run in drawn)

    agentic = any(s.turns for run in drawn for s in run.summaries)
    fig, axes = plt.subplots(
        3 if agentic else 2,
        3,
        figsize=AGENTIC_FIGSIZE_IN if agentic else FIGSIZE_IN,
        constrained_layout=True,
    )
    tradeoff, ttft, token = axes[0]
    spread, throughput, cost = axes[1]
    if agentic:
        prompts, turn_ttft, calls = axes[2]
        _per_turn(prompts, drawn, tokens=True)
        _per_turn(turn_ttft, drawn, tokens=False)
        _tool_calls(calls, drawn)
        _load_axis(calls, xs, open_loop)
    _tradeoff(tradeoff, drawn)
    _lines(ttft, drawn, _TTFT_LINES)
    ttft.set_title("time to first token and to first content (ms)")
    _lines(token, drawn, _TOKEN_LINES)
    token.set_title("per output token (ms)")
    _distributions(spread, drawn)
    rates = _throughput(throughput, drawn)
    has_cost = _cost(cost, drawn)
    for ax in (ttft, token, throughput, *((cost,) if has_cost else ())):
        _load_axis(ax, xs, open_loop)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
        _legend_below(ax, *((rates,) if ax is throughput and rates is not None else ()))
    names = " vs ".join(name for name, _ in runs)
    heading = " vs ".join(dict.fromkeys(title_of(doc) for _, doc in runs))  # each fact once
    fig.suptitle(f"gptoss-modal bench: {names}\n{heading}")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
