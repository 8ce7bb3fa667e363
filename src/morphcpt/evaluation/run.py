"""Evaluate models on benchmark files: the function behind `morphcpt evaluate` and scripts/run_evaluation.py."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from morphcpt.data.markers import write_json_atomic
from morphcpt.errors import MorphcptError
from morphcpt.evaluation.generate import suites_of
from morphcpt.evaluation.items import Item, read_items
from morphcpt.evaluation.scoring import HFScorer, Scorer, model_name, score_benchmark, write_summary
from morphcpt.languages import LanguagePack, resolve_language
from morphcpt.progress import task_reporter

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
    skipped: Counter[str] = Counter()
    items: list[Item] = []
    first_seen: dict[tuple[object, ...], str] = {}
    repeats: Counter[tuple[str, str]] = Counter()
    for path in files:
        for item in read_items(path, skipped):
            # Published suites ship concatenations of others: the same item from two files counts once.
            key = (item.suite, item.task, item.prompt("en"), item.options, item.answer)
            if key in first_seen:
                repeats[(path.name, first_seen[key])] += 1
                continue
            first_seen[key] = path.name
            items.append(item)
    for (later, earlier), count in sorted(repeats.items()):
        print(f"warning: {directory}: {count} item(s) of {later} repeat items of {earlier}; counted once",
              file=sys.stderr)  # fmt: skip
    if skipped:
        print(f"warning: {directory}: skipped {sum(skipped.values())} item(s): {dict(sorted(skipped.items()))}",
              file=sys.stderr)  # fmt: skip
    return items


def evaluate_scorers(
    scorers: list[Scorer],
    benchmarks: list[str],
    eval_mode: str,
    benchmarks_dir: Path,
    results_dir: Path,
    langs: list[str],
    max_new_tokens: int = 24,
    *,
    language: LanguagePack | str,
    fingerprints: dict[str, Any] | None = None,
) -> list[Path]:
    """Score each model; with `fingerprints` (model -> what its scores depend on), a model whose folder
    records the same fingerprint is not scored again, and one whose fingerprint changed starts afresh."""
    """Score `scorers` on the benchmarks' files, asking in `langs` (prompt languages of `language`)."""
    pack = resolve_language(language)
    pack.check_prompt_languages(langs)
    loaded = {b: load_benchmark(benchmarks_dir, b) for b in benchmarks}
    return _score_all(scorers, loaded, eval_mode, results_dir, langs, pack, max_new_tokens)


def _score_all(
    scorers: list[Scorer],
    loaded: dict[str, list[Item]],
    eval_mode: str,
    results_dir: Path,
    langs: list[str],
    language: LanguagePack,
    max_new_tokens: int = 24,
) -> list[Path]:
    from rich.progress import Progress

    if eval_mode not in MODES:
        raise MorphcptError(f"--eval-mode must be mcq, gen or both, not {eval_mode!r}")
    summaries = []
    # The evaluate stage is one task (0): `morphcpt status` shows items scored of all it will score.
    modes = MODES[eval_mode]
    per_model = sum(1 for items in loaded.values() for item in items for m in modes if m in item.modes) * len(langs)
    reporter = task_reporter(0, "items", total=per_model * len(scorers))
    with Progress(disable=None) as progress:
        for scorer in scorers:
            for benchmark, items in loaded.items():
                score_benchmark(
                    scorer,
                    benchmark,
                    items,
                    results_dir,
                    MODES[eval_mode],
                    langs,
                    max_new_tokens,
                    progress=progress,
                    language=language,
                    reporter=reporter,
                )
            summaries.append(write_summary(results_dir / scorer.name))
    reporter.finish()
    return summaries


def evaluate_models(
    models: list[str],
    benchmarks: list[str],
    eval_mode: str,
    benchmarks_dir: Path,
    results_dir: Path,
    langs: list[str],
    device: str = "auto",
    *,
    language: LanguagePack | str,
    fingerprints: dict[str, Any] | None = None,
    tokenizer: str | None = None,
) -> list[Path]:
    """Score each model; with `fingerprints` (model -> what its scores depend on), a model whose folder
    records the same fingerprint is not scored again, and one whose fingerprint changed starts afresh.
    A model may be a training checkpoint (NeMo 2, or a CPU run's directory): it is converted to a Hugging
    Face folder beside it first, with `tokenizer` when the checkpoint carries none (training/export.py)."""
    from morphcpt.training.export import model_for_evaluation

    # The pack, its prompt languages and the benchmarks are checked before any model loads, so bad names and
    # missing files fail fast.
    pack = resolve_language(language)
    pack.check_prompt_languages(langs)
    loaded = {b: load_benchmark(benchmarks_dir, b) for b in benchmarks}
    current: list[Path] = []
    scorers: list[Scorer] = []
    scored: list[str] = []
    for model in models:
        wanted = (fingerprints or {}).get(model)
        folder = results_dir / model_name(model)
        recorded = _read_evaluated(folder)
        if wanted is not None and recorded == json.loads(json.dumps(wanted)) and (folder / "summary.json").exists():
            print(f"{model_name(model)}: scores are current, not re-scored")
            current.append(folder / "summary.json")
            continue
        if wanted is not None and recorded is not None and folder.exists():
            # Scores of another model (retrained, re-exported) or other benchmarks: kept aside, not resumed.
            aside = folder.with_name(f"{folder.name}.superseded-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
            folder.rename(aside)
            print(f"{model_name(model)}: its model or benchmarks changed; old scores kept as {aside}")
        # Results are named after the model as given, not after the folder a checkpoint was converted into.
        scorers.append(HFScorer.load(model_for_evaluation(model, tokenizer), name=model_name(model), device=device))
        scored.append(model)
    summaries = _score_all(scorers, loaded, eval_mode, results_dir, langs, pack)
    for model in scored:
        wanted = (fingerprints or {}).get(model)
        if wanted is not None:
            write_json_atomic(results_dir / model_name(model) / EVALUATED, wanted)
    return current + summaries


EVALUATED = "evaluated.json"  # what the scores in a model's folder were made from


def _read_evaluated(folder: Path) -> Any:
    try:
        return json.loads((folder / EVALUATED).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
