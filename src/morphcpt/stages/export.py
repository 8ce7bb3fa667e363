"""export: a run's final checkpoint as a Hugging Face model in models_dir/<run>."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from morphcpt.context import RunContext
from morphcpt.data.markers import marker_path
from morphcpt.graph import StageJob
from morphcpt.stages import register_stage
from morphcpt.stages._common import RunParams, known_run, morphcpt_command
from morphcpt.stages.base import Completion, Stage, marker_completion, read_json


def export_inputs(layout: Any, run: str) -> dict[str, Any]:
    """The finished run's record (step, loss): a retrained run means a new export."""
    done = read_json(layout.checkpoint_dir(run) / "done.json") or {}
    return {"step": done.get("step"), "loss": done.get("loss")}


@register_stage
class Export(Stage):
    name = "export"
    Params = RunParams
    body_template = "stages/export.j2"
    job_modules = ("torch", "transformers", "safetensors")

    def check(self, experiment: Any, params: RunParams) -> list[str]:  # type: ignore[override]
        return known_run(experiment, params.run)

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.model_dir(job.params["run"])]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(ctx, "export", "--run", job.params["run"], python=python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return marker_path(ctx.layout.model_dir(job.params["run"]))

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        expected: dict[str, Any] = {"tokenizer": ctx.experiment.data.tokenizer}
        record = read_json(self.marker(ctx, job, task)) or {}
        if "trained" in record.get("parameters", {}):
            expected["trained"] = export_inputs(ctx.layout, job.params["run"])
        model_dir = ctx.layout.model_dir(job.params["run"])
        return marker_completion(self.marker(ctx, job, task), expected, outputs_in=model_dir)
