"""The resolved settings of one training run: what both backends, `morphcpt train --dry-run` and the seed's
`training/nemo/run_cpt.py` command line agree on. Pure Python; no NeMo or torch here."""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from morphcpt.config import Experiment
from morphcpt.context import Layout
from morphcpt.errors import MorphcptError


@dataclass(frozen=True)
class RunPlan:
    run: str
    variant: str
    backend: str
    recipe: str
    pretrained: str
    data_path: Path
    checkpoint_dir: Path
    model_dir: Path
    seed: int
    seq_length: int
    global_batch_size: int
    micro_batch_size: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    clip_grad: float
    precision: str
    max_steps: int
    checkpoint_interval: int
    val_interval: int
    log_interval: int
    gpus_per_node: int
    num_nodes: int
    tensor_parallel: int
    pipeline_parallel: int
    wandb_project: str
    wandb_name: str
    tiny_model: dict[str, int] = field(default_factory=dict)

    @property
    def data_parallel(self) -> int:
        """Replicas of the model, as the backend lays the run out (the CPU backend: one, whatever the GPUs)."""
        from morphcpt.training.backends import get_backend

        return get_backend(self.backend).data_parallel(self)

    @property
    def grad_accumulation(self) -> int:
        return self.global_batch_size // (self.data_parallel * self.micro_batch_size)

    def check(self) -> None:
        """Batch arithmetic GBS = DP x MBS x grad-accum, exactly; intervals inside the run."""
        if self.global_batch_size != self.data_parallel * self.micro_batch_size * self.grad_accumulation:
            raise MorphcptError(
                f"run {self.run}: global_batch_size {self.global_batch_size} is not data-parallel "
                f"{self.data_parallel} x micro_batch_size {self.micro_batch_size} x an integer grad accumulation"
            )
        if self.checkpoint_interval > self.max_steps:
            raise MorphcptError(
                f"run {self.run}: checkpoint_interval {self.checkpoint_interval} > max_steps {self.max_steps}"
            )

    def fingerprint_settings(self) -> dict[str, Any]:
        """Settings a resumed run must share with the run that wrote its checkpoints."""
        keys = (
            "backend recipe pretrained data_path seed seq_length global_batch_size micro_batch_size lr min_lr "
            "warmup_steps weight_decay clip_grad max_steps tiny_model"
        ).split()
        data = asdict(self)
        return {k: str(data[k]) if isinstance(data[k], Path) else data[k] for k in keys}

    def table_rows(self) -> list[tuple[str, str]]:
        return [
            ("run / variant", f"{self.run} / {self.variant}"),
            ("backend / recipe", f"{self.backend} / {self.recipe}"),
            ("start from", self.pretrained),
            ("data", str(self.data_path)),
            ("checkpoints (resume)", str(self.checkpoint_dir)),
            ("seq / GBS / MBS", f"{self.seq_length} / {self.global_batch_size} / {self.micro_batch_size}"),
            (
                "GPUs x nodes, TP / PP / DP",
                f"{self.gpus_per_node} x {self.num_nodes}, "
                f"{self.tensor_parallel} / {self.pipeline_parallel} / {self.data_parallel}",
            ),
            ("grad accumulation", str(self.grad_accumulation)),
            ("optimizer", f"AdamW lr {self.lr:g} cosine -> {self.min_lr:g}, warmup {self.warmup_steps}"),
            ("weight decay / clip", f"{self.weight_decay:g} / {self.clip_grad:g}"),
            ("precision", self.precision),
            ("steps", str(self.max_steps)),
            (
                "checkpoint / val / log every",
                f"{self.checkpoint_interval} / {self.val_interval} / {self.log_interval}",
            ),
            ("wandb", f"{self.wandb_project} / {self.wandb_name}"),
        ]


def wandb_name(experiment: Experiment, run: str) -> str:
    """The run's W&B name: `training.wandb_run_name` filled in (checked when the experiment loads)."""
    return experiment.training.wandb_run_name.format(experiment=experiment.name, run=run)


def plan_for_run(experiment: Experiment, run: str, **overrides: Any) -> RunPlan:
    if run not in experiment.runs:
        raise MorphcptError(f"unknown run {run!r}; the experiment has {', '.join(experiment.runs)}")
    variant = experiment.runs[run].variant
    t = experiment.training
    plan = RunPlan(
        run=run,
        variant=variant,
        backend=t.backend,
        recipe=t.recipe,
        pretrained=t.pretrained,
        data_path=Layout(experiment).merged_prefix(variant),
        checkpoint_dir=Layout(experiment).checkpoint_dir(run),
        model_dir=Layout(experiment).model_dir(run),
        seed=experiment.seed,
        seq_length=t.seq_length,
        global_batch_size=t.global_batch_size,
        micro_batch_size=t.micro_batch_size,
        lr=t.lr,
        min_lr=t.min_lr,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        clip_grad=t.clip_grad,
        precision=t.precision,
        max_steps=t.max_steps,
        checkpoint_interval=t.checkpoint_interval,
        val_interval=t.val_interval,
        log_interval=t.log_interval,
        gpus_per_node=t.gpus_per_node,
        num_nodes=t.num_nodes,
        tensor_parallel=t.tensor_parallel,
        pipeline_parallel=t.pipeline_parallel,
        wandb_project=t.wandb_project,
        wandb_name=wandb_name(experiment, run),
        tiny_model=dict(t.tiny_model),
    )
    plan = replace(plan, **{k: v for k, v in overrides.items() if v is not None})
    plan.check()
    return plan


def seed_argument_parser() -> argparse.ArgumentParser:
    """The seed's command line: run_cpt.py --data-path ... --checkpoint-dir ... --wandb-name ... --max-steps N."""
    parser = argparse.ArgumentParser(
        prog="run_cpt.py",
        description="Continued pretraining of one run (NeMo backend; the CPU backend with --backend).",
    )
    parser.add_argument("--experiment", default="seapile-tl-cpt", help="experiment name or YAML path")
    parser.add_argument("--run", help="run name; found from --wandb-name or --data-path when omitted")
    parser.add_argument("--data-path", type=Path, help="indexed dataset prefix (without .bin/.idx)")
    parser.add_argument("--checkpoint-dir", type=Path)
    parser.add_argument("--wandb-name")
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--time-budget", type=float, help="seconds from now; default: from the job's walltime")
    parser.add_argument("--dry-run", action="store_true", help="print the resolved plan and the recipe, do not train")
    return parser


def plan_from_seed_args(experiment: Experiment, args: argparse.Namespace) -> RunPlan:
    run = args.run
    if run is None:
        # The run's W&B name names it, and so do the run's own name and the earlier `<experiment>-<run>` form.
        by_name = [
            r for r in experiment.runs if args.wandb_name in (r, f"{experiment.name}-{r}", wandb_name(experiment, r))
        ]
        by_data = [
            r
            for r in experiment.runs
            if args.data_path and Path(args.data_path).parent.name == experiment.runs[r].variant
        ]
        candidates = by_name or by_data
        if len(candidates) != 1:
            raise MorphcptError(
                "cannot tell which run this is: pass --run (one of "
                f"{', '.join(experiment.runs)}), or a --wandb-name or --data-path that names one"
            )
        run = candidates[0]
    return plan_for_run(
        experiment,
        run,
        data_path=args.data_path,
        checkpoint_dir=args.checkpoint_dir,
        wandb_name=args.wandb_name,
        max_steps=args.max_steps,
    )


def deadline_from_environment(margin_seconds: int, budget: float | None = None) -> float | None:
    """When training must stop: `budget` seconds from now, or the job's start + walltime - margin."""
    if budget is not None:
        return time.time() + budget
    walltime = os.environ.get("MORPHCPT_WALLTIME_SECONDS")
    start = os.environ.get("MORPHCPT_JOB_START")
    if walltime and start:
        return float(start) + float(walltime) - margin_seconds
    return None
