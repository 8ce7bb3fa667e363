"""The analysis plots: MCQ accuracy has a chance line at the mean of 1/k over the items, a benchmark whose
generation scores are all 0 gets a sentence in the report instead of a plot of empty bars, deltas.png has
Newcombe intervals matching `difference_interval`, and no label of any plot falls outside its figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.collections import LineCollection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.text import Text

from morphcpt.evaluation.analysis import (
    Cell,
    analyze,
    collect,
    difference_interval,
    fit_labels,
    plot_bars,
    plot_deltas,
)

MODELS = ["baseline", "stochastok", "patok"]


def _write_results(root: Path, rows: dict[str, list[tuple[str, str, int, bool]]]) -> None:
    """<root>/<model>/pacute.jsonl from (suite, mode, options, correct) per item, as the evaluator writes."""
    for model, items in rows.items():
        (root / model).mkdir(parents=True, exist_ok=True)
        lines = []
        for number, (suite, mode, options, correct) in enumerate(items):
            record = {"id": f"pacute/{suite}/{number}", "benchmark": "pacute", "suite": suite, "mode": mode}
            record |= {"correct": correct}
            if mode == "mcq":
                record |= {"logprobs": [-1.0] * options, "pred": 0, "gold": 0 if correct else 1}
            lines.append(json.dumps(record))
        (root / model / "pacute.jsonl").write_text("\n".join(lines) + "\n")


def _items(suite: str, options: list[int], right: int, mode: str = "mcq") -> list[tuple[str, str, int, bool]]:
    return [(suite, mode, k, i < right) for i, k in enumerate(options)]


def _chance_levels(fig: Figure) -> list[float]:
    """The y of every dashed horizontal line on the figure's axes (axhline or per-suite hlines)."""
    ax = fig.axes[0]
    levels = [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"]
    for collection in ax.collections:
        if isinstance(collection, LineCollection) and collection.get_linestyle()[0][1] is not None:
            levels += [segment[0][1] for segment in collection.get_segments() if segment[0][1] == segment[1][1]]
    return sorted(float(v) for v in levels)


def test_mcq_plot_draws_chance_at_the_mean_of_one_over_k(tmp_path: Path) -> None:
    _write_results(
        tmp_path, {m: _items("affixation", [4] * 20, 9) + _items("composition", [4] * 20, 3) for m in MODELS}
    )
    fig = plot_bars(collect(tmp_path), "pacute", "mcq", MODELS)
    assert fig is not None and _chance_levels(fig) == [0.25]
    assert any("chance (25%)" == text.get_text() for text in fig.axes[0].get_legend().get_texts())
    # Suites with other option counts: one segment each, at the mean of 1/k (4 and 2 options: 3/8).
    other = tmp_path / "other"
    _write_results(other, {m: _items("affixation", [4] * 10, 2) + _items("composition", [4, 2] * 5, 2) for m in MODELS})
    assert _chance_levels(plot_bars(collect(other), "pacute", "mcq", MODELS)) == [0.25, 0.375]
    # Generation has no options, so no chance line.
    _write_results(other, {m: _items("affixation", [0] * 10, 2, "gen") for m in MODELS})
    assert _chance_levels(plot_bars(collect(other), "pacute", "gen", MODELS)) == []


def test_an_all_zero_generation_plot_is_not_drawn_and_the_report_says_why(tmp_path: Path) -> None:
    rows = {m: _items("affixation", [4] * 20, 6) + _items("affixation", [0] * 20, 0, "gen") for m in MODELS}
    _write_results(tmp_path, rows)
    (tmp_path / "pacute_gen.png").write_bytes(b"an older run's plot")
    result = analyze(tmp_path)
    assert "pacute_mcq.png" in result["plots"] and (tmp_path / "pacute_mcq.png").stat().st_size > 1000
    assert "pacute_gen.png" not in result["plots"] and not (tmp_path / "pacute_gen.png").exists()
    report = (tmp_path / "report.md").read_text()
    assert "- pacute_gen.png: every model scored 0 on every pacute suite in generation." in report
    assert "![pacute_gen.png]" not in report
    # One model getting one right is something to show.
    rows["patok"][-1] = ("affixation", "gen", 0, True)
    _write_results(tmp_path, rows)
    assert "pacute_gen.png" in analyze(tmp_path)["plots"] and (tmp_path / "pacute_gen.png").stat().st_size > 1000


def test_difference_interval_is_newcombes() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II example (a): 56/70 - 48/80, method 10.
    low, high = difference_interval(Cell("a", "b", "s", "mcq", 70, 56), Cell("r", "b", "s", "mcq", 80, 48))
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=5e-5)


def _cells() -> list[Cell]:
    """Many rows with long suite names: the case where tick labels ran off the figure."""
    suites = [f"a_rather_long_suite_name_{i}" for i in range(8)]
    return [
        Cell(model, bench, suite, mode, 200, 40 + 10 * number + 7 * index, 0.25 if mode == "mcq" else None)
        for index, model in enumerate(MODELS)
        for bench in ("hierarchical", "pacute")
        for number, suite in enumerate(suites)
        for mode in ("mcq", "gen")
    ]


def test_deltas_have_error_bars_spanning_the_newcombe_intervals() -> None:
    cells = _cells()
    fig = plot_deltas(cells, "baseline", MODELS)
    assert fig is not None
    lookup = {(c.model, c.benchmark, c.suite, c.mode): c for c in cells}
    rows = sorted({(c.benchmark, c.suite, c.mode) for c in cells})
    containers = [c for c in fig.axes[0].containers if isinstance(c, BarContainer)]
    assert len(containers) == 2  # stochastok and patok against baseline
    for model, container in zip(MODELS[1:], containers, strict=True):
        segments = container.errorbar.lines[2][0].get_segments()
        assert len(segments) == len(rows)
        for key, segment in zip(rows, segments, strict=True):
            low, high = difference_interval(lookup[(model, *key)], lookup[("baseline", *key)])
            assert sorted(y for _, y in segment) == pytest.approx([100 * low, 100 * high])
    assert "Newcombe" in fig.axes[0].get_title()


@pytest.mark.parametrize("which", ["deltas", "hierarchical_mcq", "pacute_gen"])
def test_no_label_falls_outside_the_figure(which: str) -> None:
    cells = _cells()
    if which == "deltas":
        fig = plot_deltas(cells, "baseline", MODELS)
    else:
        benchmark, mode = which.split("_")
        fig = plot_bars(cells, benchmark, mode, MODELS)
    assert fig is not None
    fit_labels(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = fig.bbox
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    assert len(texts) > 10
    for text in texts:
        box = text.get_window_extent(renderer)
        assert (box.x0 >= frame.x0 - 1 and box.y0 >= frame.y0 - 1) and (
            box.x1 <= frame.x1 + 1 and box.y1 <= frame.y1 + 1
        ), f"{text.get_text()!r} at {box} outside {frame}"
