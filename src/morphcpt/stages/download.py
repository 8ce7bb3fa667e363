"""download: fetch the corpus (from the hub, or data.source.local_path) as one JSONL file."""

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
class Download(Stage):
    name = "download"
    body_template = "stages/download.j2"
    job_modules = ("huggingface_hub", "pyarrow")

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [ctx.layout.corpus]

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        return morphcpt_command(ctx, "download", python=python)

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return marker_path(ctx.layout.corpus)

    def fingerprint(self, ctx: RunContext, job: StageJob, task: int) -> dict[str, Any]:
        from morphcpt.data.download import download_parameters

        return download_parameters(ctx.experiment, ctx.layout.resolve)
