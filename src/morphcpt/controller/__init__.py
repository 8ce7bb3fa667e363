"""The controller: the experiment as one dependency graph on Slurm, PBS Pro or this machine (via submitit),
its state in SQLite, and the policy that resubmits what walltime or failure cut short."""

from __future__ import annotations

from pathlib import Path

from morphcpt.cluster import get_scheduler
from morphcpt.config import (
    CLUSTERS_DIR,
    EXPERIMENTS_DIR,
    Experiment,
    load_experiment,
    load_profile,
    resolve_config_path,
)
from morphcpt.context import Snapshot
from morphcpt.controller.engine import Controller, Policy
from morphcpt.controller.executors import Backend
from morphcpt.controller.lock import ControllerLock
from morphcpt.controller.state import StateStore
from morphcpt.errors import MorphcptError
from morphcpt.graph import build_graph
from morphcpt.render.scripts import RenderTarget, training_resource_problems


def state_path(workdir: Path, runs_dir: str, experiment: Experiment) -> Path:
    base = Path(runs_dir)
    return (base if base.is_absolute() else workdir / base) / experiment.name / "state.db"


def make_backend(target: RenderTarget, folder: Path) -> Backend:
    return get_scheduler(target.profile.scheduler).backend(target, folder)


def _active_jobs(store: StateStore) -> int:
    row = store.db.execute("SELECT COUNT(*) FROM tasks WHERE state IN ('SUBMITTING', 'PENDING', 'RUNNING')")
    return int(row.fetchone()[0])


def open_controller(
    experiment: str,
    profile: str | None,
    workdir: Path | None = None,
    policy: Policy | None = None,
    *,
    reader: bool = False,
) -> Controller:
    """The controller of an experiment. With `profile` (a submission), the live experiment and profile files
    are snapshotted into runs/<experiment>/ first; every job reads the snapshot. Without it, the snapshot the
    last submission made is used as it is.

    The controller holds runs/<experiment>/controller.lock while it lives; a second one refuses. A `reader`
    (status) never waits: when another controller holds the lock it opens the state read-only."""
    root = (workdir or Path.cwd()).absolute()
    experiment_path = resolve_config_path(experiment, EXPERIMENTS_DIR, "experiment")
    exp = load_experiment(experiment_path)
    lock: ControllerLock | None = None
    if profile is None:
        store_path = state_path(root, "runs", exp)
        snapshot = Snapshot(store_path.parent)
        if not store_path.exists() or not snapshot.exists():
            raise MorphcptError(
                f"experiment {exp.name} has not been submitted here (no {store_path}); use `morphcpt submit`"
            )
        lock = ControllerLock(store_path.parent)
        if reader:
            if not lock.try_acquire():
                return _read_only_controller(root, store_path, snapshot, policy)
        else:
            lock.acquire(exp.name)
        prof = load_profile(snapshot.profile)
    else:
        profile_path = resolve_config_path(profile, CLUSTERS_DIR, "cluster profile")
        prof = load_profile(profile_path)
        store_path = state_path(root, prof.paths.runs, exp)
        snapshot = Snapshot(store_path.parent)
        lock = ControllerLock(store_path.parent)
        lock.acquire(exp.name)
        store = StateStore(store_path)
        try:
            recorded = store.get_meta("profile")
            active = _active_jobs(store)
            if recorded and Path(recorded) != profile_path.absolute() and active:
                raise MorphcptError(
                    f"{store_path} has jobs queued or running under profile {recorded}; "
                    f"`morphcpt cancel {exp.name}` them first, or use another workdir"
                )
            changed = snapshot.differs_from(experiment_path, profile_path)
            if changed and active:
                raise MorphcptError(
                    f"{', '.join(changed)} changed since the last submission, and {active} job(s) of it are still "
                    f"queued or running on the old settings; wait for them or `morphcpt cancel {exp.name}`, "
                    "then submit again"
                )
            snapshot.write(experiment_path, profile_path)
            store.set_meta({"profile": str(profile_path.absolute()), "experiment": str(experiment_path.absolute())})
        finally:
            store.close()
    frozen = load_experiment(snapshot.experiment)
    target = RenderTarget.create(prof, snapshot.profile, frozen, snapshot.experiment, root)
    problems = training_resource_problems(target, list(build_graph(frozen)))
    if problems:
        raise MorphcptError("\n".join(problems))
    store = StateStore(store_path)
    controller = Controller(target, store, make_backend(target, store_path.parent / "submitit"), policy)
    controller.lock = lock
    controller.register()
    return controller


def _read_only_controller(root: Path, store_path: Path, snapshot: Snapshot, policy: Policy | None) -> Controller:
    """A controller that only reads: for `status` while another controller acts (it writes nothing)."""
    frozen = load_experiment(snapshot.experiment)
    target = RenderTarget.create(load_profile(snapshot.profile), snapshot.profile, frozen, snapshot.experiment, root)
    store = StateStore(store_path, read_only=True)
    controller = Controller(target, store, make_backend(target, store_path.parent / "submitit"), policy)
    controller.read_only = True
    return controller


def open_target(experiment: str, profile: str, workdir: Path | None = None) -> RenderTarget:
    """The live experiment and profile, for what must not write anything (a dry run)."""
    root = (workdir or Path.cwd()).absolute()
    experiment_path = resolve_config_path(experiment, EXPERIMENTS_DIR, "experiment")
    profile_path = resolve_config_path(profile, CLUSTERS_DIR, "cluster profile")
    return RenderTarget.create(
        load_profile(profile_path), profile_path, load_experiment(experiment_path), experiment_path, root
    )
