"""analyze: tables with Wilson intervals and plots from the per-item results (results/report.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from morphcpt.context import RunContext
from morphcpt.graph import StageJob
from morphcpt.stages import register_stage
from morphcpt.stages._common import morphcpt_command
from morphcpt.stages.base import Completion, Stage


@register_stage
class Analyze(Stage):
    name = "analyze"
    body_template = "stages/analyze.j2"
    job_modules = ("matplotlib",)

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.report]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(ctx, "analyze", python=python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return ctx.layout.report

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        report = ctx.layout.report
        return Completion.complete() if report.exists() else Completion.rerun(f"{report.name} is missing")
