"""Tables and plots from per-item results: accuracy per model x benchmark suite (or level) x mode with
Wilson 95% intervals, deltas of each model against a reference (the base model, else `baseline`) with
Newcombe's 95% intervals built from those Wilson intervals, and the tokenizer morphology metrics of the data
stage when its data_stats.json is given.

Outputs in the results directory: report.md, accuracy.csv, and PNG plots (MCQ plots with a chance line from
the items' option counts; a plot in which every model scores 0 is left out, and the report says so).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morphcpt.data.markers import atomic_output
from morphcpt.errors import MorphcptError

Z95 = 1.959963984540054
_MODES = {"mcq": "multiple choice", "gen": "generation"}


@dataclass(frozen=True)
class Cell:
    model: str
    benchmark: str
    suite: str
    mode: str
    n: int
    correct: int
    # Expected accuracy of a uniform guess, the mean of 1/k over the cell's items (k options each, from the
    # MCQ records' log-likelihoods); None for generation, which has no options.
    chance: float | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.correct, self.n)


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = correct / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def difference_interval(cell: Cell, reference: Cell) -> tuple[float, float]:
    """95% interval of `cell`'s accuracy minus `reference`'s: Newcombe's hybrid score interval (method 10 of
    Newcombe 1998), from the two Wilson intervals. It treats the two as independent samples; on the same
    items (paired) it is conservative, wider than a paired interval would be."""
    p1, p2 = cell.accuracy, reference.accuracy
    (l1, u1), (l2, u2) = cell.interval, reference.interval
    delta = p1 - p2
    return (delta - math.hypot(p1 - l1, u2 - p2), delta + math.hypot(u1 - p1, p2 - l2))


def collect(results_dir: Path) -> list[Cell]:
    """One cell per (model, benchmark, suite, mode) from every <model>/<benchmark>.jsonl."""
    counts: dict[tuple[str, str, str, str], list[float]] = {}
    files = sorted(results_dir.glob("*/*.jsonl"))
    if not files:
        raise MorphcptError(f"{results_dir}: no results (<model>/<benchmark>.jsonl); run the evaluation first")
    for path in files:
        model = path.parent.name
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                record = json.loads(line)
                key = (model, record["benchmark"], record["suite"], record["mode"])
                tally = counts.setdefault(key, [0, 0, 0.0, 0])
                tally[0] += 1
                tally[1] += bool(record["correct"])
                if record["mode"] == "mcq" and record.get("logprobs"):  # one log-likelihood per option
                    tally[2] += 1 / len(record["logprobs"])
                    tally[3] += 1
            except (ValueError, KeyError) as exc:
                raise MorphcptError(f"{path}:{number}: malformed result record ({exc})") from None
    return [
        Cell(m, b, s, mode, int(n), int(c), shares / known if known else None)
        for (m, b, s, mode), (n, c, shares, known) in sorted(counts.items())
    ]


def _models(cells: list[Cell], reference: str | None) -> list[str]:
    names = sorted({c.model for c in cells})
    # dict.fromkeys: the reference is usually "baseline" itself, and must appear once.
    order = [n for n in dict.fromkeys((reference, "baseline", "stochastok", "patok")) if n in names]
    return order + [n for n in names if n not in order]


def pick_reference(cells: list[Cell], reference: str | None) -> str | None:
    names = {c.model for c in cells}
    if reference and reference in names:
        return reference
    return "baseline" if "baseline" in names else None


def write_csv(cells: list[Cell], path: Path) -> None:
    with atomic_output(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["model", "benchmark", "suite", "mode", "n", "correct", "accuracy", "ci_low", "ci_high"])
        for c in cells:
            low, high = c.interval
            writer.writerow(
                [
                    c.model,
                    c.benchmark,
                    c.suite,
                    c.mode,
                    c.n,
                    c.correct,
                    f"{c.accuracy:.4f}",
                    f"{low:.4f}",
                    f"{high:.4f}",
                ]
            )


def markdown_table(cells: list[Cell], reference: str | None) -> str:
    models = _models(cells, reference)
    rows = sorted({(c.benchmark, c.suite, c.mode) for c in cells})
    lookup = {(c.model, c.benchmark, c.suite, c.mode): c for c in cells}
    header = "| benchmark | suite | mode | " + " | ".join(models) + " |"
    lines = [header, "|" + "---|" * (3 + len(models))]
    for benchmark, suite, mode in rows:
        values = []
        for model in models:
            cell = lookup.get((model, benchmark, suite, mode))
            if cell is None:
                values.append("-")
                continue
            low, high = cell.interval
            text = f"{100 * cell.accuracy:.1f} [{100 * low:.1f}, {100 * high:.1f}]"
            ref = lookup.get((reference, benchmark, suite, mode)) if reference else None
            if ref is not None and model != reference:
                text += f" ({100 * (cell.accuracy - ref.accuracy):+.1f})"
            values.append(text)
        lines.append(f"| {benchmark} | {suite} | {mode} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only; no display on cluster nodes or CI
    import matplotlib.pyplot as plt

    return plt


def fit_labels(fig: Any) -> None:
    """Lay the figure out so that every label (rotated ticks, title, legend) lies inside it."""
    fig.tight_layout()


def save_figure(fig: Any, path: Path) -> None:
    """Write the figure laid out by `fit_labels`, cropped to what is drawn (bbox_inches: nothing cut off)."""
    fit_labels(fig)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _pyplot().close(fig)


def all_zero(cells: list[Cell], benchmark: str, mode: str) -> bool:
    """Whether every model scored 0 on every suite of `benchmark` in `mode`: a plot of empty bars."""
    chosen = [c for c in cells if c.benchmark == benchmark and c.mode == mode]
    return bool(chosen) and all(c.correct == 0 for c in chosen)


def plot_bars(cells: list[Cell], benchmark: str, mode: str, models: list[str]) -> Any | None:
    """Accuracy per suite (or level) and model with Wilson intervals; on MCQ a dashed line at chance, the
    mean of 1/k over the items (one line when every suite has the same, else one per suite). None when
    there is nothing to plot."""
    plt = _pyplot()

    chosen = [c for c in cells if c.benchmark == benchmark and c.mode == mode]
    if not chosen:
        return None
    suites = sorted({c.suite for c in chosen})
    lookup = {(c.model, c.suite): c for c in chosen}
    width = 0.8 / max(len(models), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(suites)), 4))
    for index, model in enumerate(models):
        xs, ys, errs = [], [], [[], []]
        for position, suite in enumerate(suites):
            cell = lookup.get((model, suite))
            if cell is None:
                continue
            low, high = cell.interval
            xs.append(position + index * width)
            ys.append(cell.accuracy)
            errs[0].append(max(cell.accuracy - low, 0.0))
            errs[1].append(max(high - cell.accuracy, 0.0))
        ax.bar(xs, ys, width, yerr=errs, capsize=2, label=model)
    chance = {suite: [c.chance for c in chosen if c.suite == suite and c.chance is not None] for suite in suites}
    per_suite = {suite: sum(v) / len(v) for suite, v in chance.items() if v}  # the same items for every model
    if per_suite and len({round(v, 9) for v in per_suite.values()}) == 1:
        level = next(iter(per_suite.values()))
        ax.axhline(level, color="grey", linestyle="--", linewidth=1, label=f"chance ({100 * level:.0f}%)")
    elif per_suite:
        for number, (suite, level) in enumerate(per_suite.items()):
            left = suites.index(suite) - width / 2
            ax.hlines(level, left, left + 0.8, color="grey", linestyle="--", label="chance" if number == 0 else None)
    ax.set_xticks([p + width * (len(models) - 1) / 2 for p in range(len(suites))], suites, rotation=20, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"accuracy ({mode})")
    ax.set_title(f"{benchmark}: accuracy per {'level' if benchmark == 'hierarchical' else 'suite'} (95% Wilson)")
    ax.legend(fontsize=8)
    return fig


def plot_deltas(cells: list[Cell], reference: str, models: list[str]) -> Any | None:
    """Each model's accuracy minus the reference's, in points, per (benchmark, suite, mode), with Newcombe's
    95% intervals (`difference_interval`). None without a model besides the reference."""
    plt = _pyplot()

    lookup = {(c.model, c.benchmark, c.suite, c.mode): c for c in cells}
    rows = sorted({(c.benchmark, c.suite, c.mode) for c in cells})
    others = [m for m in models if m != reference]
    if not others:
        return None
    fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(rows)), 4.5))
    width = 0.8 / len(others)
    for index, model in enumerate(others):
        xs, ys, errs = [], [], [[], []]
        for position, key in enumerate(rows):
            cell, ref = lookup.get((model, *key)), lookup.get((reference, *key))
            if cell and ref:
                low, high = difference_interval(cell, ref)
                delta = cell.accuracy - ref.accuracy
                xs.append(position + index * width)
                ys.append(100 * delta)
                errs[0].append(100 * (delta - low))
                errs[1].append(100 * (high - delta))
        ax.bar(xs, ys, width, yerr=errs, capsize=2, label=model)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(
        [p + width * (len(others) - 1) / 2 for p in range(len(rows))],
        [f"{b[:4]}/{s}/{m}" for b, s, m in rows],
        rotation=60,
        ha="right",
        rotation_mode="anchor",
        fontsize=7,
    )
    ax.set_ylabel(f"accuracy - {reference} (points)")
    ax.set_title(f"Deltas against {reference} (95% Newcombe intervals from Wilson's)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def _data_stats_table(path: Path) -> str:
    stats = json.loads(path.read_text(encoding="utf-8"))
    lines = [
        "| variant | tokens/word | realised expansion | boundary P | R | F1 | MorphScore |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in stats["variants"].items():
        m = row["morphology"]
        lines.append(
            f"| {name} | {row['tokens_per_word']:.3f} | {row['edits']['realised_expansion_rate']:.3f} | "
            f"{m['boundary_precision']:.3f} | {m['boundary_recall']:.3f} | {m['boundary_f1']:.3f} | "
            f"{m['morphscore']:.3f} |"
        )
    return "\n".join(lines)


def analyze(results_dir: Path, reference: str | None = None, data_stats: Path | None = None) -> dict[str, Any]:
    cells = collect(results_dir)
    reference = pick_reference(cells, reference)
    models = _models(cells, reference)
    write_csv(cells, results_dir / "accuracy.csv")
    plots: list[str] = []
    skipped: dict[str, str] = {}
    for benchmark in sorted({c.benchmark for c in cells}):
        for mode in ("mcq", "gen"):
            name = f"{benchmark}_{mode}.png"
            if all_zero(cells, benchmark, mode):  # empty bars say nothing a sentence does not
                skipped[name] = f"every model scored 0 on every {benchmark} suite in {_MODES[mode]}"
                (results_dir / name).unlink(missing_ok=True)  # not an older run's plot beside this report
            elif (fig := plot_bars(cells, benchmark, mode, models)) is not None:
                save_figure(fig, results_dir / name)
                plots.append(name)
    if reference and (fig := plot_deltas(cells, reference, models)) is not None:
        save_figure(fig, results_dir / "deltas.png")
        plots.append("deltas.png")
    table = markdown_table(cells, reference)
    parts = [
        "# morphcpt results",
        "",
        f"Accuracy in % with Wilson 95% intervals; in brackets after, the difference to **{reference}** in points."
        if reference
        else "Accuracy in % with Wilson 95% intervals.",
        "MCQ picks the option with the highest summed log-likelihood (ties count as wrong); generation is exact",
        "match after normalisation. Per-item records: `<model>/<benchmark>.jsonl`; all cells: `accuracy.csv`.",
        "",
        table,
        "",
    ]
    if data_stats and data_stats.exists():
        parts += ["## Tokenization per variant (data stage)", "", _data_stats_table(data_stats), ""]
    parts += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    if skipped:
        parts += ["Not plotted:", ""] + [f"- {name}: {why}." for name, why in skipped.items()] + [""]
    with atomic_output(results_dir / "report.md") as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return {
        "report": str(results_dir / "report.md"),
        "plots": plots,
        "skipped": skipped,
        "table": table,
        "cells": len(cells),
    }
