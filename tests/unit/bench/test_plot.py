"""The benchmark's figure: what each panel draws, the title's facts, legends clear of data."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import pytest

from gptoss_modal.bench import plot
from gptoss_modal.bench.schema import CostDoc, GpuDoc, RunDoc, read_run

if TYPE_CHECKING:  # matplotlib (~0.5 s to import) loads in the first drawing, not at collection
    from matplotlib.figure import Figure

pytestmark = [
    pytest.mark.skipif(
        importlib.util.find_spec("matplotlib") is None, reason="the plot extra is not installed"
    ),
    # One xdist worker runs this module (and test_report's plot test): matplotlib is imported
    # once, and each drawing below is made once, where spread tests would redo both per worker.
    pytest.mark.xdist_group("matplotlib"),
]

RUN = Path(__file__).parent / "data" / "run-v1.json"
COST = CostDoc(usd_per_mtok_output=2.5, usd_per_mtok_total=0.9, total_tokens_per_s=100.0)
GPU = GpuDoc(
    name="H100", count=2, usd_per_gpu_s=0.001, usd_per_s=0.002, source="list-price", detail=""
)


def with_cost(doc: RunDoc, cost: CostDoc) -> RunDoc:
    """The document as a ``--gpu H100:2`` run writes it: the GPUs in the settings, a cost per
    level (the cost module's own structs)."""
    levels = [
        msgspec.structs.replace(level, summary=msgspec.structs.replace(level.summary, cost=cost))
        for level in doc.levels
    ]
    settings = msgspec.structs.replace(doc.settings, gpu=GPU)
    return msgspec.structs.replace(doc, levels=levels, settings=settings)


@pytest.fixture
def doc() -> RunDoc:
    return read_run(RUN)


Runs = tuple[tuple[str, bool], ...]  # (name, with cost?) per run: a drawing's inputs
Drawn = tuple["Figure", bytes]  # the figure plot_runs made, and the PNG it wrote
Draw = Callable[[Runs], Drawn]
LONE: Runs = (("run", False),)
LONE_COSTLY: Runs = (("run", True),)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Draw]:
    """plot_runs of the given runs of the sample document, each drawing made once per module
    and its figure kept when plot_runs closes it: the tests only read the figure, and a
    drawing costs about a CPU-second."""
    import matplotlib.pyplot as plt

    made: dict[Runs, Drawn] = {}
    kept: list[Figure] = []

    def draw(runs: Runs) -> Drawn:
        if runs not in made:
            doc = read_run(RUN)
            path = tmp_path_factory.mktemp("plot") / "a.png"
            plot.plot_runs(
                [(name, with_cost(doc, COST) if cost else doc) for name, cost in runs], path
            )
            made[runs] = (kept.pop(), path.read_bytes())
        return made[runs]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(plt, "close", kept.append)
        yield draw
    for fig, _ in made.values():
        plt.close(fig)


def panel(fig: Figure, title_start: str) -> Any:
    return next(ax for ax in fig.axes if ax.get_title().startswith(title_start))


def test_without_cost_the_cost_panel_says_how_to_get_it(drawn: Draw) -> None:
    """No ``cost`` in the summaries: a PNG whose cost panel has no line and the --gpu note."""
    fig, png = drawn(LONE)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    cost = panel(fig, "cost per million")
    assert cost.get_lines() == []
    assert [t.get_text() for t in cost.texts] == [plot.NO_COST]


def test_with_cost_the_panel_draws_output_and_total_per_level(doc: RunDoc, drawn: Draw) -> None:
    """Cost fields: two lines (output, total) with a point per level at the recorded values."""
    cost = panel(drawn(LONE_COSTLY)[0], "cost per million")
    assert len(cost.texts) == 0
    assert [list(line.get_ydata()) for line in cost.get_lines()] == [
        [2.5] * len(doc.levels),
        [0.9] * len(doc.levels),
    ]


def test_the_trade_off_curve_has_a_named_point_per_level(doc: RunDoc, drawn: Draw) -> None:
    """Per-user tokens/s (1/TPOT p50) against output tokens/s per GPU, each point labelled."""
    ax = panel(drawn(LONE_COSTLY)[0], "trade-off")
    (line,) = ax.get_lines()
    summaries = sorted((lv.summary for lv in doc.levels), key=plot._x)
    assert list(line.get_xdata()) == pytest.approx([s.output_tokens_per_s / 2 for s in summaries])
    per_user = [s.stream_tokens_per_s.p50 for s in summaries if s.stream_tokens_per_s]
    assert list(line.get_ydata()) == pytest.approx(per_user)
    assert [t.get_text() for t in ax.texts] == [s.level.label for s in summaries]


def test_ttft_panel_shows_first_token_and_first_content(drawn: Draw) -> None:
    """gpt-oss reasons first: the TTFT panel has ttft and ttft_content lines."""
    labels = panel(drawn(LONE)[0], "time to first token").get_legend_handles_labels()[1]
    assert {"ttft p50", "ttft p99", "ttft_content p50", "ttft_content p99"} <= set(labels)


def test_every_legend_sits_below_its_panel(drawn: Draw) -> None:
    """No legend overlaps its panel's plotting area (each is drawn under the x axis)."""
    fig, _ = drawn((("a", False), ("b", True)))
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    legends = 0
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        legends += 1
        assert legend.get_window_extent(renderer).y1 < ax.get_window_extent(renderer).y0
    assert legends >= 5


def test_the_title_names_model_gpu_and_vllm_version(doc: RunDoc) -> None:
    """The title has the model, and the GPU and vLLM version, or says they were not recorded."""
    assert plot.title_of(doc) == (
        f"{doc.settings.model} · GPU not recorded · vLLM version not recorded"
    )
    assert "2 x H100" in plot.title_of(with_cost(doc, COST))


def test_cost_of_reads_the_summary_cost_field(doc: RunDoc) -> None:
    """cost_of: the value under ``cost`` when recorded, None when the summary has no cost."""
    summary = doc.levels[0].summary
    assert plot.cost_of(summary, "usd_per_mtok_output") is None
    costly = with_cost(doc, COST).levels[0].summary
    assert plot.cost_of(costly, "usd_per_mtok_total") == 0.9
