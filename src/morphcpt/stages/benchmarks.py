"""benchmarks: generate the language pack's benchmark suites (deterministic by the experiment seed)."""

from __future__ import annotations

import sys
from pathlib import Path

from morphcpt.context import RunContext
from morphcpt.graph import StageJob
from morphcpt.stages import register_stage
from morphcpt.stages._common import morphcpt_command
from morphcpt.stages.base import Completion, Stage, marker_completion


@register_stage
class Benchmarks(Stage):
    name = "benchmarks"
    body_template = "stages/benchmarks.j2"
    job_modules = ("wordfreq",)

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.benchmark_manifest]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(ctx, "benchmarks", python=python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return ctx.layout.benchmark_manifest

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        from morphcpt.evaluation.generate import generator_version

        evaluation = ctx.experiment.evaluation
        expected = {
            "seed": ctx.experiment.seed,
            "items_per_suite": evaluation.items_per_suite,
            # The generator's code and data: items written by an older generator are not today's benchmarks.
            "generator": generator_version(ctx.experiment.language),
        }
        return marker_completion(self.marker(ctx, job, task), expected, key=None)
