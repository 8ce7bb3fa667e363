"""train: one training run (continued pretraining); stops at its time budget with exit 3 and resumes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from morphcpt.context import RunContext
from morphcpt.graph import StageJob
from morphcpt.progress import TaskProgress
from morphcpt.stages import register_stage
from morphcpt.stages._common import RunParams, known_run
from morphcpt.stages.base import Completion, Stage, read_json, recorded_outputs


def training_inputs(layout: Any, run: str) -> dict[str, Any]:
    """What a run is trained on, as checksums recorded by the merge: a changed dataset means a new run."""
    variant = layout.experiment.runs[run].variant
    return {"data": recorded_outputs(layout.merged_prefix(variant))}


@register_stage
class Train(Stage):
    name = "train"
    Params = RunParams
    resumable = True
    body_template = "stages/train.j2"
    job_modules = ("megatron.core", "numpy", "tokenizers")  # plus the backend's (see modules())

    def check(self, experiment: Any, params: RunParams) -> list[str]:  # type: ignore[override]
        return known_run(experiment, params.run)

    def modules(self, experiment: Any) -> tuple[str, ...]:
        from morphcpt.training.backends import get_backend

        # The data modules every backend reads its dataset with, and what the chosen backend itself needs.
        return tuple(
            dict.fromkeys(
                ("megatron.core", "numpy", "tokenizers", *get_backend(experiment.training.backend).required_modules)
            )
        )

    def bindings(self, experiment: Any, params: RunParams) -> dict[str, str]:  # type: ignore[override]
        run = experiment.runs.get(params.run)
        return {"variant": run.variant} if run else {}

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.checkpoint_dir(job.params["run"])]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        from morphcpt.training.backends import get_backend

        return get_backend(ctx.experiment.training.backend).command(ctx.experiment_ref, job.params["run"], python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return ctx.layout.checkpoint_dir(job.params["run"]) / "done.json"

    def progress(self, ctx: RunContext, job: StageJob, task: int) -> tuple[int | None, str]:
        directory = ctx.layout.checkpoint_dir(job.params["run"])
        pointer = directory / "latest"
        step = int(pointer.read_text().strip().removeprefix("step_")) if pointer.exists() else 0
        attempt = read_json(directory / "attempt.json") or {}
        note = ""
        if "startup_seconds" in attempt and "budget_seconds" in attempt:
            note = f"start-up took {attempt['startup_seconds']:.0f} s of a {attempt['budget_seconds']:.0f} s budget"
        return step, note

    def report(self, progress_dir: Path, ctx: RunContext, job: StageJob, task: int) -> TaskProgress | None:
        """Steps of the target: the trainer's own report, else (a backend that does not report, such as NeMo
        in its container) the last checkpoint's step."""
        reported = super().report(progress_dir, ctx, job, task)
        if reported is not None:
            return reported
        step, _ = self.progress(ctx, job, task)
        pointer = ctx.layout.checkpoint_dir(job.params["run"]) / "latest"
        if not step or not pointer.exists():
            return None
        return TaskProgress(step, ctx.experiment.training.max_steps, "steps", pointer.stat().st_mtime)

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        directory = ctx.layout.checkpoint_dir(job.params["run"])
        if read_json(directory / "done.json") is None:
            return Completion.rerun("done.json is missing (the run has not reached its target step)")
        config = read_json(directory / "run_config.json") or {}
        expected = training_inputs(ctx.layout, job.params["run"])
        if "inputs" in config and config["inputs"] != expected:
            return Completion.rerun("its training data changed")
        return Completion.complete()
