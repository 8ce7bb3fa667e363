"""Tables and plots from per-item results: accuracy per model x benchmark suite (or level) x mode with
Wilson 95% intervals, deltas of each model against a reference (the base model, else `baseline`), and the
tokenizer morphology metrics of the data stage when its data_stats.json is given.

Outputs in the results directory: report.md, accuracy.csv, and PNG plots.
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


@dataclass(frozen=True)
class Cell:
    model: str
    benchmark: str
    suite: str
    mode: str
    n: int
    correct: int

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


def collect(results_dir: Path) -> list[Cell]:
    """One cell per (model, benchmark, suite, mode) from every <model>/<benchmark>.jsonl."""
    counts: dict[tuple[str, str, str, str], list[int]] = {}
    files = sorted(results_dir.glob("*/*.jsonl"))
    if not files:
        raise MorphcptError(f"{results_dir}: no results (<model>/<benchmark>.jsonl); run the evaluation first")
    for path in files:
        model = path.parent.name
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            try:
                record = json.loads(line)
                key = (model, record["benchmark"], record["suite"], record["mode"])
                tally = counts.setdefault(key, [0, 0])
                tally[0] += 1
                tally[1] += bool(record["correct"])
            except (ValueError, KeyError) as exc:
                raise MorphcptError(f"{path}:{number}: malformed result record ({exc})") from None
    return [Cell(m, b, s, mode, n, c) for (m, b, s, mode), (n, c) in sorted(counts.items())]


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


def _save(fig: Any, ax: Any, path: Path) -> None:
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _pyplot().close(fig)


def _plot_bars(cells: list[Cell], benchmark: str, mode: str, models: list[str], path: Path) -> bool:
    plt = _pyplot()

    chosen = [c for c in cells if c.benchmark == benchmark and c.mode == mode]
    if not chosen:
        return False
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
    ax.set_xticks([p + width * (len(models) - 1) / 2 for p in range(len(suites))], suites, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel(f"accuracy ({mode})")
    ax.set_title(f"{benchmark}: accuracy per {'level' if benchmark == 'hierarchical' else 'suite'} (95% Wilson)")
    _save(fig, ax, path)
    return True


def _plot_deltas(cells: list[Cell], reference: str, models: list[str], path: Path) -> bool:
    plt = _pyplot()

    lookup = {(c.model, c.benchmark, c.suite, c.mode): c for c in cells}
    rows = sorted({(c.benchmark, c.suite, c.mode) for c in cells})
    others = [m for m in models if m != reference]
    if not others:
        return False
    fig, ax = plt.subplots(figsize=(max(7, 0.6 * len(rows)), 4))
    width = 0.8 / len(others)
    for index, model in enumerate(others):
        xs, ys = [], []
        for position, key in enumerate(rows):
            cell, ref = lookup.get((model, *key)), lookup.get((reference, *key))
            if cell and ref:
                xs.append(position + index * width)
                ys.append(100 * (cell.accuracy - ref.accuracy))
        ax.bar(xs, ys, width, label=model)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(
        [p + width * (len(others) - 1) / 2 for p in range(len(rows))],
        [f"{b[:4]}/{s}/{m}" for b, s, m in rows],
        rotation=60,
        ha="right",
        fontsize=7,
    )
    ax.set_ylabel(f"accuracy - {reference} (points)")
    ax.set_title(f"Variant deltas against {reference}")
    _save(fig, ax, path)
    return True


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
    plots = []
    for benchmark in sorted({c.benchmark for c in cells}):
        for mode in ("mcq", "gen"):
            name = f"{benchmark}_{mode}.png"
            if _plot_bars(cells, benchmark, mode, models, results_dir / name):
                plots.append(name)
    if reference and _plot_deltas(cells, reference, models, results_dir / "deltas.png"):
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
    with atomic_output(results_dir / "report.md") as tmp:
        tmp.write_text("\n".join(parts), encoding="utf-8")
    return {"report": str(results_dir / "report.md"), "plots": plots, "table": table, "cells": len(cells)}
