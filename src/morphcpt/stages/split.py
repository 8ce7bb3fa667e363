"""split: the corpus into data.num_chunks chunks balanced by bytes, with a manifest."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from morphcpt.context import RunContext
from morphcpt.data.markers import marker_path
from morphcpt.graph import StageJob
from morphcpt.stages import register_stage
from morphcpt.stages._common import morphcpt_command
from morphcpt.stages.base import Stage


@register_stage
class Split(Stage):
    name = "split"
    body_template = "stages/split.j2"

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.split_manifest]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(ctx, "split", python=python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return marker_path(ctx.layout.split_manifest)

    def fingerprint(self, ctx: RunContext, job: StageJob, task: int) -> dict[str, Any]:
        data = ctx.experiment.data
        corpus = ctx.layout.corpus
        size = corpus.stat().st_size if corpus.exists() else None
        return {"corpus": str(Path(data.corpus)), "corpus_bytes": size, "num_chunks": data.num_chunks}
