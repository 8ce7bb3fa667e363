"""One run context: the experiment, where every artifact lives (Layout), and the config snapshot jobs read.

Every path of a run comes from `Layout`, relative to the workdir the jobs run in (so the same paths work on
the login node, inside a container and in a test's temporary directory). At submit the experiment and profile
files are copied into `runs/<experiment>/` and every job is pointed at the copies: editing the YAML while
array tasks are queued cannot mix parameters.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from morphcpt.config import ClusterProfile, Experiment
from morphcpt.errors import MorphcptError

if TYPE_CHECKING:
    from morphcpt.graph import Graph

SPLIT_MANIFEST = "manifest.json"
STATS_FILE = "data_stats.json"
BENCHMARK_MANIFEST = "manifest.json"
SNAPSHOT_EXPERIMENT = "experiment.yaml"
SNAPSHOT_PROFILE = "profile.yaml"


def chunk_name(index: int) -> str:
    return f"chunk_{index:04d}.jsonl"


@dataclass(frozen=True)
class Layout:
    """Every artifact path of an experiment, relative to `root` (the workdir) unless configured absolute."""

    experiment: Experiment
    root: Path = Path()

    def resolve(self, path: str | Path) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() or self.root == Path() else self.root / candidate

    # data
    @property
    def corpus(self) -> Path:
        return self.resolve(self.experiment.data.corpus)

    @property
    def chunks_dir(self) -> Path:
        return self.resolve(self.experiment.data.chunks_dir)

    def chunk(self, index: int) -> Path:
        return self.chunks_dir / chunk_name(index)

    @property
    def split_manifest(self) -> Path:
        return self.chunks_dir / SPLIT_MANIFEST

    @property
    def processed_dir(self) -> Path:
        return self.resolve(self.experiment.data.processed_dir)

    def variant_dir(self, variant: str) -> Path:
        return self.processed_dir / variant

    def chunk_prefix(self, variant: str, index: int) -> Path:
        return self.variant_dir(variant) / f"chunk_{index:04d}"

    def merged_prefix(self, variant: str) -> Path:
        return self.variant_dir(variant) / "all"

    @property
    def stats_file(self) -> Path:
        return self.processed_dir / STATS_FILE

    # training
    def checkpoint_dir(self, run: str) -> Path:
        return self.resolve(self.experiment.training.checkpoints_dir) / run

    def model_dir(self, run: str) -> Path:
        return self.resolve(self.experiment.training.models_dir) / run

    @property
    def pretrained_checkpoint(self) -> Path:
        pretrained = self.experiment.training.pretrained.replace("/", "--")
        return self.resolve(self.experiment.training.checkpoints_dir) / "pretrained" / pretrained

    # evaluation
    @property
    def benchmarks_dir(self) -> Path:
        return self.resolve(self.experiment.evaluation.benchmarks_dir)

    @property
    def benchmark_manifest(self) -> Path:
        return self.benchmarks_dir / BENCHMARK_MANIFEST

    @property
    def results_dir(self) -> Path:
        return self.resolve(self.experiment.evaluation.results_dir)

    def model_results(self, name: str) -> Path:
        return self.results_dir / name

    @property
    def report(self) -> Path:
        return self.results_dir / "report.md"

    def evaluated_models(self) -> dict[str, str]:
        """The models the evaluate stage scores, by their name in results/: the base model (a hub id, / -> --),
        then each run's exported model (by the run's name)."""
        exp = self.experiment
        base = exp.evaluation.base_model
        models = {base.replace("/", "--"): base} if base else {}
        return models | {run: str(Path(exp.training.models_dir) / run) for run in exp.runs}

    # the controller's own files
    def run_dir(self, runs: str | Path = "runs") -> Path:
        return self.resolve(runs) / self.experiment.name


@dataclass(frozen=True)
class RunContext:
    """What a stage needs to know about the run it belongs to."""

    experiment: Experiment
    experiment_path: Path  # the file the experiment was read from (the snapshot, under the controller)
    root: Path = Path()  # the workdir
    profile: ClusterProfile | None = None
    experiment_ref: str = ""  # the experiment file as jobs name it (relative to the workdir when inside it)
    _graph: list[Graph] = field(default_factory=list, repr=False, compare=False)

    @cached_property
    def layout(self) -> Layout:
        return Layout(self.experiment, self.root)

    @property
    def graph(self) -> Graph:
        from morphcpt.graph import build_graph

        if not self._graph:
            self._graph.append(build_graph(self.experiment))
        return self._graph[0]

    @classmethod
    def create(
        cls,
        experiment: Experiment,
        experiment_path: Path,
        root: Path | None = None,
        profile: ClusterProfile | None = None,
    ) -> RunContext:
        workdir = (root or Path.cwd()).absolute()
        return cls(experiment, Path(experiment_path), workdir, profile, relative_reference(experiment_path, workdir))


def relative_reference(path: Path, workdir: Path) -> str:
    """A file as jobs name it: relative to the workdir when inside it (so it works inside containers)."""
    absolute = Path(path).absolute()
    try:
        return os.path.relpath(absolute, workdir) if absolute.is_relative_to(workdir) else str(absolute)
    except ValueError:
        return str(absolute)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    """The experiment and profile files as a submission froze them, in runs/<experiment>/."""

    directory: Path

    @property
    def experiment(self) -> Path:
        return self.directory / SNAPSHOT_EXPERIMENT

    @property
    def profile(self) -> Path:
        return self.directory / SNAPSHOT_PROFILE

    def exists(self) -> bool:
        return self.experiment.exists() and self.profile.exists()

    def differs_from(self, experiment: Path, profile: Path) -> list[str]:
        """Which of the live files no longer match the snapshot."""
        if not self.exists():
            return []
        pairs = ((experiment, self.experiment), (profile, self.profile))
        return [str(live) for live, frozen in pairs if file_digest(live) != file_digest(frozen)]

    def write(self, experiment: Path, profile: Path) -> None:
        """Copy the live files in (atomically each: a job starting now reads the old or the new, never half)."""
        from morphcpt.data.markers import atomic_output

        self.directory.mkdir(parents=True, exist_ok=True)
        for live, frozen in ((experiment, self.experiment), (profile, self.profile)):
            if frozen.exists() and file_digest(live) == file_digest(frozen):
                continue
            if not live.exists():
                raise MorphcptError(f"{live}: file not found")
            with atomic_output(frozen) as tmp:
                shutil.copyfile(live, tmp)
