"""The experiment as a graph of stage jobs: what runs, with which arguments, after what.

One place for the graph: `setup_jobs.sh` renders it for hand submission and the controller submits it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from morphcpt.config import Experiment, StageKind


@dataclass(frozen=True)
class StageJob:
    name: str
    kind: StageKind
    after: tuple[str, ...] = ()
    array_size: int | None = None
    params: dict[str, str] = field(default_factory=dict)

    @property
    def is_array(self) -> bool:
        return self.array_size is not None


def experiment_jobs(experiment: Experiment) -> list[StageJob]:
    """Every job of the experiment, in an order where each job comes after the jobs it depends on."""
    jobs: list[StageJob] = [
        StageJob("download_data", "download"),
        StageJob("split_data", "split", after=("download_data",)),
    ]
    merges: list[str] = []
    for variant in experiment.variants:
        jobs.append(
            StageJob(
                f"preprocess_data_{variant}",
                "preprocess",
                after=("split_data",),
                array_size=experiment.data.num_chunks,
                params={"variant": variant},
            )
        )
        jobs.append(
            StageJob(
                f"merge_data_{variant}",
                "merge",
                after=(f"preprocess_data_{variant}",),
                params={"variant": variant},
            )
        )
        merges.append(f"merge_data_{variant}")
    jobs.append(StageJob("data_stats", "data_stats", after=tuple(merges)))
    base = ()
    if experiment.training.backend == "nemo":
        jobs.append(StageJob("import_base_model", "import_model"))
        base = ("import_base_model",)
    exports: list[str] = []
    for run, config in experiment.runs.items():
        jobs.append(
            StageJob(
                f"run_cpt_{run}",
                "train",
                after=(f"merge_data_{config.variant}", *base),
                params={"run": run, "variant": config.variant},
            )
        )
        jobs.append(StageJob(f"export_{run}", "export", after=(f"run_cpt_{run}",), params={"run": run}))
        exports.append(f"export_{run}")
    jobs.append(StageJob("generate_benchmarks", "benchmarks"))
    jobs.append(StageJob("evaluate", "evaluate", after=(*exports, "generate_benchmarks")))
    jobs.append(StageJob("analyze", "analyze", after=("evaluate", "data_stats")))
    return jobs
