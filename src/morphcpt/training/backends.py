"""Training backends as plugins: the one place that turns `training.backend` into the code that trains.

The CLI, the seed's `run_cpt.py` entry point and export ask `get_backend(experiment.training.backend)` and call
its methods, so adding a backend means registering one object, not finding every `if backend == ...` branch.
"cpu" and "nemo" ship with morphcpt; other packages add theirs through the `morphcpt.training_backends`
entry-point group, e.g. in their pyproject.toml:

    [project.entry-points."morphcpt.training_backends"]
    mytrainer = "mypackage.backend:MyTrainerBackend"

The entry point names a TrainingBackend class (instantiated without arguments), a factory, or an instance.
Importing this module imports neither torch nor NeMo (render, submit and `--dry-run` run where neither
exists); backends import them inside their methods.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from morphcpt.errors import MorphcptError

if TYPE_CHECKING:
    from morphcpt.config import Experiment
    from morphcpt.training.plan import RunPlan

ENTRY_POINT_GROUP = "morphcpt.training_backends"

# Shipped backends, loaded on first use ("module:attribute", like an entry point). Their names are reserved:
# an entry point with one of these names is ignored.
BUILTIN_BACKENDS: dict[str, str] = {
    "cpu": "morphcpt.training.cpu_backend:CpuBackend",
    "nemo": "morphcpt.training.nemo_backend:NemoBackend",
}


@dataclass(frozen=True)
class TrainResult:
    """How one training job ended: `status` is the job's exit status (exit_codes.OK at the target step,
    TIME_BUDGET_REACHED when it stopped with a checkpoint to resume from)."""

    status: int
    step: int
    loss: float | None
    resumed_from: int | None


@runtime_checkable
class TrainingBackend(Protocol):
    """What morphcpt needs from a trainer. A RunPlan holds every setting; the backend only decides how."""

    name: str
    # Python modules the backend's train/export/import jobs import (checked in containers before submitting).
    required_modules: tuple[str, ...]
    # True when training starts from weights that `import_pretrained` must convert first (an import_model job).
    needs_import: bool

    def data_parallel(self, plan: RunPlan) -> int:
        """Data-parallel replicas the plan's batch arithmetic (GBS = DP x MBS x grad accumulation) uses."""
        ...

    def train(self, experiment: Experiment, plan: RunPlan, deadline: float | None) -> TrainResult:
        """Train (resuming when the run has checkpoints) until plan.max_steps or `deadline` (time.time())."""
        ...

    def describe(self, experiment: Experiment, plans: Sequence[RunPlan]) -> str:
        """For `train --dry-run`: what the backend would build, beyond the plan table ("" for nothing)."""
        ...

    def final_checkpoint(self, plan: RunPlan) -> Path:
        """The finished run's last checkpoint; MorphcptError when the run has not finished."""
        ...

    def export(self, experiment: Experiment | None, checkpoint: Path, out_dir: Path) -> None:
        """Write `checkpoint` as a Hugging Face model (config.json and weights) into the existing `out_dir`;
        the caller adds the tokenizer, the marker and the atomic rename. `experiment` is None when a
        checkpoint is converted outside any experiment (run_evaluation.py given a checkpoint directory)."""
        ...

    def import_pretrained(self, experiment: Experiment) -> str:
        """One-time conversion of training.pretrained into what `train` starts from; returns a message."""
        ...

    def command(self, experiment_ref: str, run: str, python: str) -> list[str]:
        """The command a training job runs on each node (torchrun for distributed backends)."""
        ...

    def check_resources(self, plan: RunPlan, nodes: int, gpus_per_node: int) -> list[str]:
        """Problems running `plan` on `nodes` x `gpus_per_node` (the profile's train resources); [] when it
        fits. Each message names the experiment key and the profile's value."""
        ...


_MEMBERS = (
    "name",
    "required_modules",
    "needs_import",
    "data_parallel",
    "train",
    "describe",
    "final_checkpoint",
    "export",
    "import_pretrained",
    "check_resources",
)

_loaded: dict[str, TrainingBackend] = {}


def _entry_points() -> dict[str, metadata.EntryPoint]:
    found: dict[str, metadata.EntryPoint] = {}
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in BUILTIN_BACKENDS:
            continue
        other = found.get(entry.name)
        if other is not None and other.value != entry.value:
            raise MorphcptError(
                f"training backend {entry.name!r} is registered twice in {ENTRY_POINT_GROUP!r}: "
                f"{other.value} and {entry.value}; uninstall one"
            )
        found[entry.name] = entry
    return found


def available_backends() -> list[str]:
    """Names `training.backend` can take here: the shipped ones and those installed packages register."""
    return sorted({*BUILTIN_BACKENDS, *_entry_points()})


def _as_backend(name: str, obj: Any, origin: str) -> TrainingBackend:
    if isinstance(obj, type) or (callable(obj) and not isinstance(obj, TrainingBackend)):
        obj = obj()
    missing = [member for member in _MEMBERS if not hasattr(obj, member)]
    if missing:
        raise MorphcptError(
            f"training backend {name!r} ({origin}) is not a TrainingBackend: it lacks {', '.join(missing)}"
        )
    if obj.name != name:
        raise MorphcptError(f"training backend {name!r} ({origin}) calls itself {obj.name!r}; the names must match")
    return obj  # type: ignore[no-any-return]


def get_backend(name: str) -> TrainingBackend:
    """The backend `training.backend: <name>` selects; MorphcptError naming the known ones when none is."""
    if name in _loaded:
        return _loaded[name]
    if name in BUILTIN_BACKENDS:
        origin = BUILTIN_BACKENDS[name]
        module, _, attribute = origin.partition(":")
        obj = getattr(importlib.import_module(module), attribute)
    else:
        entries = _entry_points()
        if name not in entries:
            known = ", ".join(sorted({*BUILTIN_BACKENDS, *entries}))
            raise MorphcptError(
                f"unknown training backend {name!r}; known backends: {known} "
                f"(packages add more through the {ENTRY_POINT_GROUP!r} entry-point group)"
            )
        origin = f"entry point {entries[name].value}"
        try:
            obj = entries[name].load()
        except Exception as exc:  # a broken plugin is reported as one line, not as a traceback
            raise MorphcptError(f"training backend {name!r} ({origin}) failed to load: {exc}") from exc
    backend = _as_backend(name, obj, origin)
    _loaded[name] = backend
    return backend
