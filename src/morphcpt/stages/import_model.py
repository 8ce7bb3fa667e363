"""import_model: one-time conversion of training.pretrained (Hugging Face) into the NeMo checkpoint CPT starts from."""

from __future__ import annotations

import sys
from pathlib import Path

from morphcpt.context import RunContext
from morphcpt.graph import StageJob
from morphcpt.stages import register_stage
from morphcpt.stages._common import morphcpt_command
from morphcpt.stages.base import Completion, Stage


@register_stage
class ImportModel(Stage):
    name = "import_model"
    body_template = "stages/import_model.j2"
    job_modules = ("nemo", "torch")

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.pretrained_checkpoint]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(ctx, "import-model", python=python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return ctx.layout.pretrained_checkpoint / "context"

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        marker = self.marker(ctx, job, task)
        return Completion.complete() if marker.exists() else Completion.rerun(f"{marker} is missing")

    def invalidate(self, ctx: RunContext, job: StageJob, task: int) -> None:
        import shutil

        shutil.rmtree(self.marker(ctx, job, task), ignore_errors=True)
