"""Whether a run plan fits the nodes x GPUs a cluster profile gives the train stage.

The experiment says how the run is laid out (training.num_nodes, gpus_per_node, tensor/pipeline parallel,
batch sizes); the profile says what the scheduler allocates (resources.train.nodes / ngpus). They are written
in different files, so a mismatch shows up only when the job starts, or as a silently different run. These
checks, used by the backends' `check_resources`, find it before submitting. Pure arithmetic, no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from morphcpt.training.plan import RunPlan


def _profile(nodes: int, gpus_per_node: int) -> str:
    return f"the profile's train resources (nodes: {nodes} x ngpus: {gpus_per_node})"


def layout_problems(plan: RunPlan, nodes: int, gpus_per_node: int) -> list[str]:
    """A distributed run uses exactly the allocated nodes and GPUs: the plan must ask for what is given."""
    problems = []
    if plan.num_nodes != nodes:
        problems.append(f"training.num_nodes: {plan.num_nodes} but the profile's train resources give nodes: {nodes}")
    if gpus_per_node == 0:
        problems.append(
            f"training.backend: {plan.backend} trains on GPUs but the profile's train resources give ngpus: 0"
        )
    elif plan.gpus_per_node != gpus_per_node:
        problems.append(
            f"training.gpus_per_node: {plan.gpus_per_node} but the profile's train resources give "
            f"ngpus: {gpus_per_node}"
        )
    return problems


def parallel_problems(plan: RunPlan, nodes: int, gpus_per_node: int) -> list[str]:
    """Model parallelism must divide the allocated GPUs, and the global batch the resulting data parallelism."""
    world = nodes * gpus_per_node
    if world <= 0:
        return []
    model_parallel = plan.tensor_parallel * plan.pipeline_parallel
    if world % model_parallel:
        return [
            f"training.tensor_parallel x training.pipeline_parallel ({plan.tensor_parallel} x "
            f"{plan.pipeline_parallel} = {model_parallel}) does not divide the {world} GPUs of "
            f"{_profile(nodes, gpus_per_node)}"
        ]
    return batch_problems(plan, world // model_parallel, f" on {_profile(nodes, gpus_per_node)}")


def batch_problems(plan: RunPlan, data_parallel: int, where: str = "") -> list[str]:
    """GBS = DP x MBS x an integer gradient accumulation."""
    step = data_parallel * plan.micro_batch_size
    if plan.global_batch_size % step:
        return [
            f"training.global_batch_size: {plan.global_batch_size} is not divisible by data-parallel size "
            f"{data_parallel} x training.micro_batch_size: {plan.micro_batch_size} (= {step}){where}"
        ]
    return []


def single_node_problems(plan: RunPlan, nodes: int) -> list[str]:
    """For backends that train in one process: more than one node is an allocation nothing would use."""
    problems = []
    if plan.num_nodes != 1:
        problems.append(f"training.num_nodes: {plan.num_nodes} but training.backend: {plan.backend} trains on one node")
    if nodes != 1:
        problems.append(
            f"training.backend: {plan.backend} trains in one process on one node but the profile's train "
            f"resources give nodes: {nodes}"
        )
    return problems
