"""data_stats: per-variant counts, expansion definition and realised rate, and morpheme alignment."""

from __future__ import annotations

import sys
from pathlib import Path

from morphcpt.context import RunContext
from morphcpt.graph import StageJob
from morphcpt.stages import register_stage
from morphcpt.stages._common import morphcpt_command
from morphcpt.stages.base import Completion, Stage, read_json


@register_stage
class DataStats(Stage):
    name = "data_stats"
    body_template = "stages/data_stats.j2"
    job_modules = ("numpy", "tokenizers", "megatron.core")

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.stats_file]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(ctx, "data-stats", python=python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return ctx.layout.stats_file

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        stats = read_json(ctx.layout.stats_file)
        if stats is None:
            return Completion.rerun(f"{ctx.layout.stats_file.name} is missing")
        if sorted(stats.get("variants", {})) != sorted(ctx.experiment.variants):
            return Completion.rerun("the experiment's variants changed")
        for name, variant in ctx.experiment.variants.items():
            # The statistics name the definition of expand_prop their rates were realised under.
            asked = getattr(variant, "expansion", None)
            recorded = (stats["variants"][name].get("expansion") or {}).get("definition")
            if asked != recorded:
                return Completion.rerun(f"expansion of {name} changed ({recorded} -> {asked})")
        return Completion.complete()
