"""The controller: the experiment as one dependency graph on Slurm, PBS Pro or this machine (via submitit),
its state in SQLite, and the policy that resubmits what walltime or failure cut short."""

from __future__ import annotations

from pathlib import Path

from morphcpt.config import (
    CLUSTERS_DIR,
    EXPERIMENTS_DIR,
    Experiment,
    load_experiment,
    load_profile,
    resolve_config_path,
)
from morphcpt.controller.engine import Controller, Policy
from morphcpt.controller.executors import Backend
from morphcpt.controller.state import StateStore
from morphcpt.errors import MorphcptError
from morphcpt.render.scripts import RenderTarget


def state_path(workdir: Path, runs_dir: str, experiment: Experiment) -> Path:
    base = Path(runs_dir)
    return (base if base.is_absolute() else workdir / base) / experiment.name / "state.db"


def make_backend(target: RenderTarget, folder: Path) -> Backend:
    scheduler = target.profile.scheduler
    if scheduler == "slurm":
        from morphcpt.controller.slurm import SlurmBackend

        return SlurmBackend(target, folder)
    if scheduler == "pbs":
        from morphcpt.controller.pbs import PBSBackend

        return PBSBackend(target, folder)
    from morphcpt.controller.local import LocalBackend

    return LocalBackend(target, folder)


def open_controller(
    experiment: str, profile: str | None, workdir: Path | None = None, policy: Policy | None = None
) -> Controller:
    """The controller of an experiment. Without `profile`, the one it was submitted with (from its state)."""
    root = (workdir or Path.cwd()).absolute()
    experiment_path = resolve_config_path(experiment, EXPERIMENTS_DIR, "experiment")
    exp = load_experiment(experiment_path)
    if profile is None:
        store_path = state_path(root, "runs", exp)
        if not store_path.exists():
            raise MorphcptError(
                f"experiment {exp.name} has not been submitted here (no {store_path}); use `morphcpt submit`"
            )
        store = StateStore(store_path)
        profile = store.get_meta("profile")
        store.close()
        if profile is None:
            raise MorphcptError(f"{store_path} records no cluster profile; submit again with --profile")
    profile_path = resolve_config_path(profile, CLUSTERS_DIR, "cluster profile")
    prof = load_profile(profile_path)
    target = RenderTarget.create(prof, profile_path, exp, experiment_path, root)
    path = state_path(target.workdir, prof.paths.runs, exp)
    store = StateStore(path)
    recorded = store.get_meta("profile")
    active = store.db.execute("SELECT COUNT(*) FROM tasks WHERE state IN ('SUBMITTING', 'PENDING', 'RUNNING')")
    if recorded and Path(recorded) != profile_path.absolute() and active.fetchone()[0]:
        store.close()
        raise MorphcptError(
            f"{path} has jobs queued or running under profile {recorded}; "
            f"`morphcpt cancel {exp.name}` them first, or use another workdir"
        )
    controller = Controller(target, store, make_backend(target, path.parent / "submitit"), policy)
    controller.register()
    return controller
