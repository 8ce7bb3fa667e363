"""What one controller task runs, and what the disk says about it.

A task is one stage job, or one chunk of an array stage. submitit pickles `run_task(spec)` and calls it inside
the job; it runs the stage type's own command line (the same the hand-submitted script runs) and hands its exit
status to the scheduler unchanged (status 3 = a resumable stage stopped at its time budget with a checkpoint).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from morphcpt.context import RunContext, relative_reference
from morphcpt.graph import StageJob
from morphcpt.progress import JOB_NAME_VARIABLE, PROGRESS_DIR_VARIABLE
from morphcpt.stages.base import Completion

PYTHON = "\0python"  # replaced by the job's own interpreter when the task runs


@dataclass(frozen=True)
class TaskSpec:
    """Everything a job needs to run one task, relative to the workdir (so it works inside containers)."""

    job: StageJob
    argv: tuple[str, ...]
    chunk: int | None = None
    env: dict[str, str] = field(default_factory=dict, hash=False)

    @property
    def task(self) -> int:
        return self.chunk or 0


def task_spec(ctx: RunContext, job: StageJob, task: int, ngpus: int = 0, progress_dir: Path | None = None) -> TaskSpec:
    argv = job.stage.argv(ctx, job, task, python=PYTHON)
    env: dict[str, str] = {JOB_NAME_VARIABLE: job.name}
    if progress_dir is not None:
        # Where the task's own progress reports go (morphcpt.progress), relative to the workdir like the rest.
        env[PROGRESS_DIR_VARIABLE] = relative_reference(progress_dir, ctx.root)
    if job.stage.resumable and job.kind == "train":
        # torchrun reads its rendezvous settings from PET_* variables (the train template sets the same).
        env |= {
            "PET_NPROC_PER_NODE": str(max(ngpus, 1)),
            "PET_NNODES": "1",
            "PET_NODE_RANK": "0",
            "PET_MASTER_ADDR": "127.0.0.1",
        }
    return TaskSpec(job=job, argv=tuple(argv), chunk=task or None, env=env)


def run_task(spec: TaskSpec) -> int:
    """Runs inside the job (via submitit). A failing stage exits the job with the stage's own status."""
    env = dict(os.environ)
    for key, value in spec.env.items():
        env.setdefault(key, value)
    argv = [sys.executable if word == PYTHON else word for word in spec.argv]
    print(f"[morphcpt] {spec.job.name} task {spec.task}: {' '.join(argv)}", flush=True)
    status = subprocess.run(argv, env=env, check=False).returncode
    if status != 0:
        # SystemExit passes through submitit's exception handler, so the scheduler sees this exact status.
        sys.exit(status if status > 0 else 128 - status)
    return status


def task_completion(ctx: RunContext, job: StageJob, task: int) -> Completion:
    """The disk's word on one task: done, or why it must run."""
    return job.stage.completion(ctx, job, task)
