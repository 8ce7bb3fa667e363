"""Evaluate models on benchmark files: the function behind `morphcpt evaluate` and scripts/run_evaluation.py."""

from __future__ import annotations

from pathlib import Path

from morphcpt.errors import MorphcptError
from morphcpt.evaluation.generate import suites_of
from morphcpt.evaluation.items import Item, read_items
from morphcpt.evaluation.scoring import HFScorer, Scorer, score_benchmark, write_summary

MODES = {"mcq": ["mcq"], "gen": ["gen"], "both": ["mcq", "gen"]}


def load_benchmark(benchmarks_dir: Path, benchmark: str) -> list[Item]:
    """All items of a benchmark: its generated suite files, or any *.jsonl placed in its directory
    (e.g. PACUTE's published files)."""
    try:
        suites_of(benchmark)
    except ValueError as exc:
        raise MorphcptError(str(exc)) from None
    directory = benchmarks_dir / benchmark
    files = sorted(directory.glob("*.jsonl"))
    if not files:
        raise MorphcptError(f"{directory}: no benchmark files; run `morphcpt benchmarks` first")
    return [item for path in files for item in read_items(path)]


def evaluate_scorers(
    scorers: list[Scorer],
    benchmarks: list[str],
    eval_mode: str,
    benchmarks_dir: Path,
    results_dir: Path,
    langs: list[str],
    max_new_tokens: int = 24,
) -> list[Path]:
    loaded = {b: load_benchmark(benchmarks_dir, b) for b in benchmarks}
    return _score_all(scorers, loaded, eval_mode, results_dir, langs, max_new_tokens)


def _score_all(
    scorers: list[Scorer],
    loaded: dict[str, list[Item]],
    eval_mode: str,
    results_dir: Path,
    langs: list[str],
    max_new_tokens: int = 24,
) -> list[Path]:
    from rich.progress import Progress

    if eval_mode not in MODES:
        raise MorphcptError(f"--eval-mode must be mcq, gen or both, not {eval_mode!r}")
    summaries = []
    with Progress(disable=None) as progress:
        for scorer in scorers:
            for benchmark, items in loaded.items():
                score_benchmark(
                    scorer, benchmark, items, results_dir, MODES[eval_mode], langs, max_new_tokens, progress=progress
                )
            summaries.append(write_summary(results_dir / scorer.name))
    return summaries


def evaluate_models(
    models: list[str],
    benchmarks: list[str],
    eval_mode: str,
    benchmarks_dir: Path,
    results_dir: Path,
    langs: list[str],
    device: str = "auto",
) -> list[Path]:
    # Benchmarks are read before any model loads, so bad names and missing files fail fast.
    loaded = {b: load_benchmark(benchmarks_dir, b) for b in benchmarks}
    scorers: list[Scorer] = [HFScorer.load(m, device=device) for m in models]
    return _score_all(scorers, loaded, eval_mode, results_dir, langs)
