"""preprocess: one task per chunk: tokenize, apply the variant's token edits, write a Megatron indexed dataset."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from morphcpt.context import RunContext, chunk_name
from morphcpt.data.markers import marker_path
from morphcpt.graph import StageJob
from morphcpt.stages import register_stage
from morphcpt.stages._common import VariantParams, known_variant, morphcpt_command
from morphcpt.stages.base import Completion, Stage, marker_completion, recorded_outputs

# One random stream per batch, independent of the number of workers (data/preprocess.py).
RANDOM_STREAMS = "one per batch: (seed, variant, chunk, batch index)"


def preprocess_settings(experiment: Any, variant: str) -> dict[str, Any]:
    """The configured settings that determine a chunk's output (the job adds the tokenizer's fingerprint and
    the chunk's checksum): one definition for the job's marker and the controller's check."""
    return {
        "variant": experiment.variants[variant].model_dump(mode="json"),
        "seed": experiment.seed,
        "language": experiment.language,  # the pack's affixes and segmenter shape Patok's edits
        "tokenizer": experiment.data.tokenizer,
        # Random draws are made per batch, so the batch size is part of what determines the output.
        "batch_size": experiment.data.batch_size,
        "batch_chars": experiment.data.batch_chars,
        # How the draws are seeded: chunks made with one stream per chunk (before --workers) differ from
        # today's for the same settings, so they are not complete for today's code.
        "random_streams": RANDOM_STREAMS,
    }


@register_stage
class Preprocess(Stage):
    name = "preprocess"
    Params = VariantParams
    array_over = "chunks"
    body_template = "stages/preprocess.j2"
    job_modules = ("numpy", "tokenizers", "megatron.core", "ahocorasick")

    def check(self, experiment: Any, params: VariantParams) -> list[str]:  # type: ignore[override]
        return known_variant(experiment, params.variant)

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        variant = job.params["variant"]
        return [ctx.layout.chunk_prefix(variant, task) for task in job.tasks()]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(
            ctx, "preprocess", "--variant", job.params["variant"], "--chunk", str(task), python=python
        )

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return marker_path(ctx.layout.chunk_prefix(job.params["variant"], task))

    def fingerprint(self, ctx: RunContext, job: StageJob, task: int) -> dict[str, Any]:
        return preprocess_settings(ctx.experiment, job.params["variant"])

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        found = marker_completion(self.marker(ctx, job, task), self.fingerprint(ctx, job, task))
        if not found.done:
            return found
        # The chunk's checksum as the split recorded it: no need to hash the chunk again on the login node.
        name = chunk_name(task)
        split = recorded_outputs(ctx.layout.split_manifest) or {}
        chunk = split.get(name, {}).get("sha256")
        recorded = marker_completion(self.marker(ctx, job, task), {"chunk_sha256": chunk})
        return recorded if recorded.done else Completion.rerun(f"input {name} changed")
