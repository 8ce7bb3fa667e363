"""evaluate: score the base model and every run's exported model on the benchmarks (resumable per item)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from morphcpt.context import RunContext
from morphcpt.data.markers import marker_path
from morphcpt.graph import StageJob
from morphcpt.stages import register_stage
from morphcpt.stages._common import morphcpt_command
from morphcpt.stages.base import Completion, Stage, read_json


def evaluation_fingerprints(layout: Any, eval_mode: str | None = None) -> dict[str, dict[str, Any]]:
    """What each model's scores depend on: its export's record (a hub model: its id), the benchmarks'
    manifest and the evaluation mode. One definition for the job (which skips current models) and the check."""
    experiment = layout.experiment
    benchmarks = read_json(layout.benchmark_manifest)
    common = {"benchmarks": benchmarks, "eval_mode": eval_mode or experiment.evaluation.eval_mode}
    found: dict[str, dict[str, Any]] = {}
    for name, model in layout.evaluated_models().items():
        if name in experiment.runs:
            record = read_json(marker_path(layout.model_dir(name))) or {}
            found[model] = {**common, "model": {k: record.get(k) for k in ("outputs", "parameters")}}
        else:
            found[model] = {**common, "model": model}
    return found


@register_stage
class Evaluate(Stage):
    name = "evaluate"
    body_template = "stages/evaluate.j2"
    job_modules = ("torch", "transformers", "tokenizers")

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.model_results(name) / "summary.json" for name in ctx.layout.evaluated_models()]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(ctx, "evaluate", python=python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return ctx.layout.results_dir

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        fingerprints = evaluation_fingerprints(ctx.layout)
        for name, model in ctx.layout.evaluated_models().items():
            folder = ctx.layout.model_results(name)
            if not (folder / "summary.json").exists():
                return Completion.rerun(f"{name} has no summary.json")
            if read_json(folder / "evaluated.json") != json.loads(json.dumps(fingerprints[model])):
                return Completion.rerun(f"the model or benchmarks of {name} changed")
        return Completion.complete()

    def invalidate(self, ctx: RunContext, job: StageJob, task: int) -> None:
        for name in ctx.layout.evaluated_models():
            (ctx.layout.model_results(name) / "summary.json").unlink(missing_ok=True)
