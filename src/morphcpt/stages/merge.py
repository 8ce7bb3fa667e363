"""merge: a variant's chunk datasets into one indexed dataset (<processed_dir>/<variant>/all)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from morphcpt.context import RunContext
from morphcpt.data.markers import marker_path
from morphcpt.graph import StageJob
from morphcpt.stages import register_stage
from morphcpt.stages._common import VariantParams, known_variant, morphcpt_command
from morphcpt.stages.base import Completion, Stage, read_json, recorded_outputs


def merge_inputs(layout: Any, variant: str) -> list[dict[str, Any] | None]:
    """Each chunk's recorded outputs (names, sizes, checksums): what the merged dataset was made from."""
    return [recorded_outputs(layout.chunk_prefix(variant, i)) for i in range(1, layout.experiment.data.num_chunks + 1)]


@register_stage
class Merge(Stage):
    name = "merge"
    Params = VariantParams
    body_template = "stages/merge.j2"
    job_modules = ("numpy", "megatron.core")

    def check(self, experiment: Any, params: VariantParams) -> list[str]:  # type: ignore[override]
        return known_variant(experiment, params.variant)

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.merged_prefix(job.params["variant"])]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(ctx, "merge", "--variant", job.params["variant"], python=python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return marker_path(ctx.layout.merged_prefix(job.params["variant"]))

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        marker = self.marker(ctx, job, task)
        record = read_json(marker)
        if record is None:
            return Completion.rerun(f"{marker.name} is missing")
        recorded = record.get("parameters", {}).get("chunks", [])
        current = merge_inputs(ctx.layout, job.params["variant"])
        for index, (old, new) in enumerate(zip(recorded, current, strict=False), start=1):
            if old != new:
                return Completion.rerun(f"input chunk_{index:04d} changed")
        if len(recorded) != len(current):
            return Completion.rerun(f"the number of chunks changed ({len(recorded)} -> {len(current)})")
        for name in record.get("outputs", {}):
            if not (marker.parent / name).exists():
                return Completion.rerun(f"output {name} is missing")
        return Completion.complete()
