"""`training.backend: nemo`: NeMo 2's pretrain recipe named by `training.recipe`, on GPUs, one process per GPU.

The work is in nemo_recipe.py, which imports NeMo inside its functions; this adapter imports nemo_recipe only
when a method runs, so choosing the backend (render, submit, --dry-run on a laptop) needs neither.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from morphcpt.training.backends import TrainResult
from morphcpt.training.resources import layout_problems, parallel_problems

if TYPE_CHECKING:
    from morphcpt.config import Experiment
    from morphcpt.training.plan import RunPlan


class NemoBackend:
    name = "nemo"
    required_modules: tuple[str, ...] = ("nemo.collections.llm", "nemo_run", "torch")
    needs_import = True

    def command(self, experiment_ref: str, run: str, python: str) -> list[str]:
        # torchrun starts one process per GPU; the seed's entry script is kept so its command line still works.
        return ["torchrun", "training/nemo/run_cpt.py", "--experiment", experiment_ref, "--run", run]

    def data_parallel(self, plan: RunPlan) -> int:
        return plan.gpus_per_node * plan.num_nodes // (plan.tensor_parallel * plan.pipeline_parallel)

    def train(self, experiment: Experiment, plan: RunPlan, deadline: float | None) -> TrainResult:
        from morphcpt.training.nemo_recipe import train_nemo

        return train_nemo(experiment, plan, deadline)

    def describe(self, experiment: Experiment, plans: Sequence[RunPlan]) -> str:
        from morphcpt.training.nemo_recipe import describe_recipes

        return describe_recipes(experiment, list(plans))

    def final_checkpoint(self, plan: RunPlan) -> Path:
        from morphcpt.training.nemo_recipe import final_checkpoint

        return final_checkpoint(plan)

    def export(self, experiment: Experiment | None, checkpoint: Path, out_dir: Path) -> None:
        from morphcpt.training.nemo_recipe import export_hf

        export_hf(checkpoint, out_dir)

    def import_pretrained(self, experiment: Experiment) -> str:
        from morphcpt.training.nemo_recipe import import_pretrained

        return import_pretrained(experiment)

    def check_resources(self, plan: RunPlan, nodes: int, gpus_per_node: int) -> list[str]:
        # The train job's torchrun starts one process per allocated GPU on each allocated node, and the recipe's
        # trainer expects training.gpus_per_node x training.num_nodes of them: the two must be equal.
        return [*layout_problems(plan, nodes, gpus_per_node), *parallel_problems(plan, nodes, gpus_per_node)]
