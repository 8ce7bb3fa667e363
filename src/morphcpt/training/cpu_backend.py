"""`training.backend: cpu`: the tiny Gemma 3 of cpu_trainer.py, one process, no GPU, no weights to import.

Its checkpoints are Hugging Face model directories already, so export is a copy. torch and transformers are
imported by cpu_trainer's functions, not here.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from morphcpt.errors import MorphcptError
from morphcpt.training import checkpoints as ckpt
from morphcpt.training.backends import TrainResult
from morphcpt.training.resources import batch_problems, single_node_problems

if TYPE_CHECKING:
    from morphcpt.config import Experiment
    from morphcpt.training.plan import RunPlan

# Files of a CPU checkpoint that only resuming needs (optimizer and RNG state), left out of the exported model.
TRAINER_STATE = "trainer_state.pt"


class CpuBackend:
    name = "cpu"
    required_modules: tuple[str, ...] = ("torch", "transformers", "megatron.core")
    needs_import = False

    def command(self, experiment_ref: str, run: str, python: str) -> list[str]:
        return [python, "-m", "morphcpt", "train", "--experiment", experiment_ref, "--run", run]

    def data_parallel(self, plan: RunPlan) -> int:
        # One process: every micro batch of a step is accumulated there, whatever gpus_per_node says.
        return 1

    def train(self, experiment: Experiment, plan: RunPlan, deadline: float | None) -> TrainResult:
        from morphcpt.training.cpu_trainer import train_cpu

        return train_cpu(experiment, plan, deadline)

    def describe(self, experiment: Experiment, plans: Sequence[RunPlan]) -> str:
        return ""  # the plan table is the whole story: there is no recipe to build

    def final_checkpoint(self, plan: RunPlan) -> Path:
        done = plan.checkpoint_dir / "done.json"
        if not done.exists():
            raise MorphcptError(f"run {plan.run} has not reached its target step ({done} missing); train it first")
        latest = ckpt.latest_checkpoint(plan.checkpoint_dir)
        if latest is None:
            raise MorphcptError(f"{plan.checkpoint_dir} has no checkpoint")
        return latest

    def export(self, experiment: Experiment | None, checkpoint: Path, out_dir: Path) -> None:
        for item in checkpoint.iterdir():
            if item.name != TRAINER_STATE:
                shutil.copy2(item, out_dir / item.name)

    def import_pretrained(self, experiment: Experiment) -> str:
        return "nothing to import: the cpu backend trains its tiny model from scratch"

    def check_resources(self, plan: RunPlan, nodes: int, gpus_per_node: int) -> list[str]:
        # GPUs are not needed (0 is the normal case) and not used when given; more than one node would be idle.
        return [*single_node_problems(plan, nodes), *batch_problems(plan, self.data_parallel(plan))]
