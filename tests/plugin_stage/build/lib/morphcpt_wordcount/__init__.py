"""count_words: one task per chunk counts the chunk's words; a stage type that lives outside morphcpt."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from morphcpt.context import RunContext, chunk_name
from morphcpt.data.markers import marker_path, write_json_atomic, write_marker
from morphcpt.graph import StageJob
from morphcpt.stages import Stage, StageParams
from morphcpt.stages.base import Completion, marker_completion, recorded_outputs


class CountWordsParams(StageParams):
    min_length: int = 1  # words shorter than this are not counted
    out_dir: str = "data/word_counts"


class CountWords(Stage):
    name = "count_words"
    Params = CountWordsParams
    array_over = "chunks"  # one task per chunk of the split

    def _output(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return ctx.layout.resolve(job.params["out_dir"]) / f"chunk_{task:04d}.json"

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        return [self._output(ctx, job, task) for task in job.tasks()]

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        return marker_path(self._output(ctx, job, task))

    def fingerprint(self, ctx: RunContext, job: StageJob, task: int) -> dict[str, Any]:
        # Input checksum as the split recorded it: a new corpus or split means a new count.
        chunk = (recorded_outputs(ctx.layout.split_manifest) or {}).get(chunk_name(task), {})
        return {"min_length": job.params["min_length"], "chunk_sha256": chunk.get("sha256")}

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        return marker_completion(self.marker(ctx, job, task), self.fingerprint(ctx, job, task))

    def run(self, ctx: RunContext, job: StageJob, task: int) -> int:
        if self.completion(ctx, job, task).done:
            print(f"count_words chunk {task}: already done")
            return 0
        counts: Counter[str] = Counter()
        key = ctx.experiment.data.text_key
        with ctx.layout.chunk(task).open(encoding="utf-8") as lines:
            for line in lines:
                text = json.loads(line).get(key) or ""
                counts.update(w for w in text.lower().split() if len(w) >= job.params["min_length"])
        out = self._output(ctx, job, task)
        write_json_atomic(out, {"words": sum(counts.values()), "top": counts.most_common(10)})
        write_marker(out, [out], self.fingerprint(ctx, job, task))
        print(f"count_words chunk {task}: {sum(counts.values())} words")
        return 0
