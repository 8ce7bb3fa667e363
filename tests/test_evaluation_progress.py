"""The evaluate stage reports items scored of the items it will score (what `morphcpt status` shows), counting
only the modes each item's prompt supports, so the report reaches its total exactly when scoring ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from morphcpt.evaluation.generate import write_benchmarks
from morphcpt.evaluation.run import evaluate_scorers
from morphcpt.progress import read_progress
from test_evaluation import TL, FakeScorer


def test_evaluation_reports_items_scored_of_its_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MORPHCPT_JOB_NAME", "evaluate")
    monkeypatch.setenv("MORPHCPT_PROGRESS_DIR", str(tmp_path / "progress"))
    write_benchmarks(tmp_path / "bench", ["pacute", "hierarchical"], 12, seed=3, language=TL)
    results = tmp_path / "results"
    scorers = [FakeScorer("a", "tie"), FakeScorer("b", "tie")]
    evaluate_scorers(scorers, ["pacute", "hierarchical"], "both", tmp_path / "bench", results, ["en"], language=TL)
    written = sum(len(p.read_text().splitlines()) for p in results.glob("*/*.jsonl"))
    report = read_progress(tmp_path / "progress" / "evaluate.0.json")
    assert report is not None and report.unit == "items"
    # Every record written is one scored (item, mode, language); MCQ-only items add no generation records.
    assert report.done == report.total == written

    # A rerun finds everything scored: the report still reaches its total (skipped items count as done).
    evaluate_scorers(scorers, ["pacute", "hierarchical"], "both", tmp_path / "bench", results, ["en"], language=TL)
    again = read_progress(tmp_path / "progress" / "evaluate.0.json")
    assert again is not None and again.done == again.total == written
