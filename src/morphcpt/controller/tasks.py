"""What one controller task runs, and how the controller knows it already ran.

A task is one stage job, or one chunk of an array stage. submitit pickles `run_task(spec)` and calls it inside
the job; it runs the same `morphcpt` stage command as the hand-submitted script and hands its exit status to
the scheduler unchanged (status 3 = training stopped at its time budget with a checkpoint).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from morphcpt.config import Experiment
from morphcpt.data.markers import marker_path
from morphcpt.data.preprocess import chunk_prefix, merged_prefix
from morphcpt.data.split import MANIFEST
from morphcpt.data.stats import STATS_FILE
from morphcpt.pipeline import StageJob


@dataclass(frozen=True)
class TaskSpec:
    """Everything a job needs to run one task, relative to the workdir (so it works inside containers)."""

    job: StageJob
    experiment: str
    chunk: int | None = None
    ngpus: int = 0
    backend: str = "cpu"

    @property
    def task(self) -> int:
        return self.chunk or 0


def stage_argv(spec: TaskSpec, python: str = sys.executable) -> list[str]:
    """The stage's command line: the same command the stage templates under job_templates/stages/ run."""
    job, exp = spec.job, ["--experiment", spec.experiment]
    params = job.params
    if job.kind == "train" and spec.backend == "nemo":
        return ["torchrun", "training/nemo/run_cpt.py", *exp, "--run", params["run"]]
    base = [python, "-m", "morphcpt"]
    by_kind = {
        "download": ["download", *exp],
        "split": ["split", *exp],
        "preprocess": ["preprocess", *exp, "--variant", params.get("variant", ""), "--chunk", str(spec.chunk)],
        "merge": ["merge", *exp, "--variant", params.get("variant", "")],
        "data_stats": ["data-stats", *exp],
        "import_model": ["import-model", *exp],
        "train": ["train", *exp, "--run", params.get("run", "")],
        "export": ["export", *exp, "--run", params.get("run", "")],
        "benchmarks": ["benchmarks", *exp],
        "evaluate": ["evaluate", *exp],
        "analyze": ["analyze", *exp],
    }
    return [*base, *by_kind[job.kind]]


def run_task(spec: TaskSpec) -> int:
    """Runs inside the job (via submitit). A failing stage exits the job with the stage's own status."""
    env = dict(os.environ)
    if spec.job.kind == "train":
        # torchrun reads its rendezvous settings from PET_* variables (the train template sets the same).
        env.setdefault("PET_NPROC_PER_NODE", str(max(spec.ngpus, 1)))
        env.setdefault("PET_NNODES", "1")
        env.setdefault("PET_NODE_RANK", "0")
        env.setdefault("PET_MASTER_ADDR", "127.0.0.1")
    argv = stage_argv(spec)
    print(f"[morphcpt] {spec.job.name} task {spec.task}: {' '.join(argv)}", flush=True)
    status = subprocess.run(argv, env=env, check=False).returncode
    if status != 0:
        # SystemExit passes through submitit's exception handler, so the scheduler sees this exact status.
        sys.exit(status if status > 0 else 128 - status)
    return status


def _evaluated_models(experiment: Experiment) -> list[str]:
    # The names evaluation.scoring.model_name gives: exported run dirs by their name, hub ids with / -> --.
    base = experiment.evaluation.base_model
    return ([base.replace("/", "--")] if base else []) + list(experiment.runs)


def completion_marker(experiment: Experiment, job: StageJob, task: int = 0) -> list[Path]:
    """The files a finished task leaves last (relative to the workdir); all present = nothing to do."""
    data, training, evaluation = experiment.data, experiment.training, experiment.evaluation
    params = job.params
    match job.kind:
        case "download":
            return [marker_path(Path(data.corpus))]
        case "split":
            return [marker_path(Path(data.chunks_dir) / MANIFEST)]
        case "preprocess":
            return [marker_path(chunk_prefix(experiment, params["variant"], task))]
        case "merge":
            return [marker_path(merged_prefix(experiment, params["variant"]))]
        case "data_stats":
            return [Path(data.processed_dir) / STATS_FILE]
        case "import_model":
            from morphcpt.training.nemo_recipe import pretrained_checkpoint_dir

            return [pretrained_checkpoint_dir(experiment) / "context"]
        case "train":
            return [Path(training.checkpoints_dir) / params["run"] / "done.json"]
        case "export":
            return [marker_path(Path(training.models_dir) / params["run"])]
        case "benchmarks":
            return [Path(evaluation.benchmarks_dir) / "manifest.json"]
        case "evaluate":
            return [Path(evaluation.results_dir) / model / "summary.json" for model in _evaluated_models(experiment)]
        case "analyze":
            return [Path(evaluation.results_dir) / "report.md"]
    raise ValueError(f"unknown stage kind {job.kind!r}")


def task_complete(experiment: Experiment, job: StageJob, task: int, workdir: Path) -> bool:
    return all((workdir / path).exists() for path in completion_marker(experiment, job, task))


def job_tasks(job: StageJob) -> list[int]:
    """The tasks of a stage job: chunks 1..N for an array stage, task 0 for a plain job."""
    return list(range(1, job.array_size + 1)) if job.array_size else [0]
