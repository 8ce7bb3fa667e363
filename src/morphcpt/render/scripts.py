"""Render every job of an experiment into standalone, readable PBS / Slurm / local scripts."""

from __future__ import annotations

import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from morphcpt import exit_codes
from morphcpt.cluster import Scheduler, get_scheduler, scheduler_names
from morphcpt.config import ClusterProfile, Experiment, Resources
from morphcpt.context import RunContext, relative_reference
from morphcpt.data.markers import atomic_output
from morphcpt.errors import RenderError
from morphcpt.graph import StageJob, build_graph
from morphcpt.render.environment import shell_quote, template_environment
from morphcpt.secrets import secret_names

# Values that mean "fill me in": a script holding one would fail on the cluster, so rendering refuses it.
_PLACEHOLDER = re.compile(r"\{\{|\{%|YOUR_|/path/to/")


@dataclass(frozen=True)
class RenderTarget:
    """What to render for: a validated profile and experiment, the files they came from, and the workdir."""

    profile: ClusterProfile
    profile_path: Path
    experiment: Experiment
    experiment_path: Path
    workdir: Path

    @classmethod
    def create(
        cls,
        profile: ClusterProfile,
        profile_path: Path,
        experiment: Experiment,
        experiment_path: Path,
        workdir: Path | None = None,
    ) -> RenderTarget:
        chosen = workdir or (Path(profile.paths.workdir) if profile.paths.workdir else Path.cwd())
        return cls(profile, Path(profile_path), experiment, Path(experiment_path), chosen.absolute())

    def resolve(self, path: str) -> Path:
        candidate = Path(path)
        return candidate if candidate.is_absolute() else self.workdir / candidate

    @property
    def scheduler(self) -> Scheduler:
        return get_scheduler(self.profile.scheduler)

    @property
    def logs_dir(self) -> Path:
        return self.resolve(self.profile.paths.logs)

    def experiment_reference(self) -> str:
        """The experiment file as the job sees it: relative to the workdir when inside it (works in containers)."""
        return relative_reference(self.experiment_path, self.workdir)

    @property
    def context(self) -> RunContext:
        return RunContext(
            self.experiment, self.experiment_path, self.workdir, self.profile, self.experiment_reference()
        )

    def resources(self, job: StageJob) -> Resources:
        """The profile's defaults, its entry for the job's stage type, then the experiment entry's overrides."""
        return self.profile.resources.for_stage(job.stage.resources_key or job.kind, job.resources)


def _find_placeholders(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        return [key] if _PLACEHOLDER.search(value) else []
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _find_placeholders(v, f"{key}.{k}" if key else str(k))]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _find_placeholders(v, f"{key}.{i}")]
    return []


def check_no_placeholders(target: RenderTarget) -> None:
    problems = [
        f"{target.profile_path}: {key}: still holds a placeholder; set a real value"
        for key in _find_placeholders(target.profile.model_dump(), "")
    ] + [
        f"{target.experiment_path}: {key}: still holds a placeholder; set a real value"
        for key in _find_placeholders(target.experiment.model_dump(), "")
    ]
    if problems:
        raise RenderError("\n".join(problems))


def training_resource_problems(target: RenderTarget, jobs: list[StageJob]) -> list[str]:
    """Where the profile's nodes x GPUs for a training job do not fit its training plan (the backend says how).
    `render` prints them as warnings (scripts may be rendered to be read); `submit` refuses to start."""
    from morphcpt.training.backends import get_backend
    from morphcpt.training.plan import plan_for_run

    problems = []
    for job in jobs:
        if job.kind != "train":
            continue
        plan = plan_for_run(target.experiment, job.params["run"])
        resources = target.resources(job)
        for problem in get_backend(plan.backend).check_resources(plan, resources.nodes, resources.ngpus):
            problems.append(f"{target.experiment_path} / {target.profile_path}: job {job.name}: {problem}")
    return problems


def _array_context(job: StageJob, target: RenderTarget, chunks: tuple[int, int] | None) -> dict[str, Any] | None:
    if job.array_size is None:
        return None
    first_chunk, last_chunk = chunks or (1, job.array_size)
    count = last_chunk - first_chunk + 1
    if count > target.profile.max_array_size:
        raise RenderError(
            f"{target.profile_path}: max_array_size: job {job.name} needs {count} array tasks "
            f"(data.num_chunks in {target.experiment_path}) but the cluster allows {target.profile.max_array_size}; "
            "lower data.num_chunks, or use `morphcpt submit`, which splits large arrays"
        )
    # PBS Pro rejects an array of one subjob, so a single chunk becomes a plain job with a fixed index.
    # PBS Pro rejects an array of one subjob, so a single chunk there becomes a plain job with a fixed index.
    directive = target.scheduler.array_directive(count)
    return {
        "first": 1,
        "last": count,
        "offset": first_chunk - 1,
        "total": job.array_size,
        "directive": directive,
        "default_index": "" if directive or count > 1 else "1",
    }


def script_path(job: StageJob, target: RenderTarget, out_dir: Path) -> Path:
    return out_dir / f"{job.name}{target.scheduler.script_suffix}"


def _log_path(job: StageJob, target: RenderTarget, array: dict[str, Any] | None) -> str:
    return target.scheduler.log_path(target.logs_dir, job.name, bool(array and array["directive"]))


# The job's own log (the prologue tees its output there): `<stem>.job.log`, or `<stem>.<index>.job.log` for an
# array task, beside the scheduler's log. A name of its own, because the scheduler may be writing its -o file
# at the same time (Slurm, Grid Engine), and the two must not interleave into one file.
JOB_LOG_SUFFIX = ".job.log"


def job_log_path(scheduler_log: str | Path, token: str | None) -> Path | None:
    """The own log of the controller's task whose scheduler log is `scheduler_log` (`<token>.log`, or
    `<token><separator><index>.log` for an array task, as the executors name them); None for another name."""
    path = Path(scheduler_log)
    if not token:
        return None
    if path.name == f"{token}.log":
        return path.with_name(token + JOB_LOG_SUFFIX)
    match = re.fullmatch(re.escape(token) + r"\D+(\d+)\.log", path.name)
    return path.with_name(f"{token}.{match.group(1)}{JOB_LOG_SUFFIX}") if match else None


def _first_set(variables: list[str], default: str) -> str:
    """bash: the first of `variables` that is set and not empty, else `default`."""
    return "".join("${" + v + ":-" for v in variables) + default + "}" * len(variables)


def _index_variables() -> list[str]:
    # Every registered scheduler's, so that a script also runs under a wrapper (e.g. Slurm's Torque qsub) that
    # sets another scheduler's variables.
    return [s.index_variable for s in map(get_scheduler, scheduler_names()) if s.index_variable]


def _job_log(
    job: StageJob, target: RenderTarget, array: dict[str, Any] | None, controller: ControllerBody | None
) -> dict[str, Any]:
    """What the prologue needs to name the job's own log: its stem and, for an array task, the bash expression
    of its index (the scheduler's array index; by hand, MORPHCPT_TASK_INDEX) and the chunk offset."""
    indices = _index_variables()
    suffix = {"suffix": JOB_LOG_SUFFIX}
    if controller:
        # The index in the name is the scheduler's array index, as in the scheduler's own log name.
        stem = Path(controller.log_path).parent / controller.token
        return {"stem": str(stem), "index": _first_set(indices, "") if array else "", "offset": 0, **suffix}
    if array is None:
        return {"stem": str(target.logs_dir / job.name), "index": "", "offset": 0, **suffix}
    # By hand the index (also the prologue's TASK_INDEX) plus the offset names the chunk, so that the parts
    # of a split array do not share a log.
    index = _first_set([*indices, "MORPHCPT_TASK_INDEX"], array["default_index"])
    return {"stem": str(target.logs_dir / job.name), "index": index, "offset": array["offset"], **suffix}


@dataclass(frozen=True)
class ControllerBody:
    """What the controller puts in place of a stage body: submitit's command, run inside the container wrapper.

    Its array is `tasks` subjobs indexed 0..tasks-1 (each with its own pickled stage call), logged to `log_path`.
    """

    command: str
    executor: str
    token: str
    job_name: str
    tasks: int
    log_path: str


def _controller_array(controller: ControllerBody, first: int) -> dict[str, Any] | None:
    if controller.tasks <= 1:
        return None
    return {"first": first, "last": first + controller.tasks - 1, "directive": True}


def render_job(
    job: StageJob,
    target: RenderTarget,
    chunks: tuple[int, int] | None = None,
    controller: ControllerBody | None = None,
) -> str:
    """One job script. `chunks` (first, last) renders part of an array, for clusters with small array limits;
    `controller` renders the same header and prologue around submitit's command instead of the stage body."""
    profile = target.profile
    resources = target.resources(job)
    scheduler = target.scheduler
    array = (
        _controller_array(controller, scheduler.first_array_index)
        if controller
        else _array_context(job, target, chunks)
    )
    container = profile.container
    context = {
        "job": job,
        "profile": profile,
        "scheduler": target.scheduler,
        "res": resources,
        "array": array,
        "workdir": str(target.workdir),
        "experiment_path": target.experiment_reference(),
        "log_path": controller.log_path if controller else _log_path(job, target, array),
        "job_log": _job_log(job, target, array, controller),
        "job_name": controller.job_name if controller else job.name,
        "controller": controller,
        "container_image": str(target.resolve(container.image)) if container.image else "",
        "container_mounts": ",".join(
            f"{target.resolve(m.source)}:{m.target}" + (":ro" if m.read_only else "") for m in container.mounts
        ),
        "secret_names": secret_names(),
        "time_budget_margin": target.experiment.training.time_budget_margin_seconds,
        "budget_exit_code": exit_codes.TIME_BUDGET_REACHED,
        "master_port": 29500 + zlib.crc32(job.name.encode()) % 1000,
        "body_template": job.stage.body_template,
        # At most this many array tasks at once: the entry's max_concurrent, within the profile's cap.
        "array_cap": min(filter(None, (job.max_concurrent, profile.max_concurrent_tasks)), default=None),
        "header_template": scheduler.header_template,
        # What a multi-node job forwards to its other nodes: morphcpt's and torchrun's variables and the
        # profile's env (HF_HOME, ...), matched exactly by name.
        "forwarded_names": "|".join(["MORPHCPT_[A-Za-z0-9_]*", "PET_[A-Za-z0-9_]*", "SUBMITIT_EXECUTOR", *profile.env]),
        "memory": scheduler.memory(resources),
        # The prologue tries every registered scheduler's variables, so a script also runs under a wrapper
        # (e.g. Slurm's Torque qsub) that sets another scheduler's.
        "job_id_variables": [s.job_id_variable for s in map(get_scheduler, scheduler_names()) if s.job_id_variable],
        "index_variables": _index_variables(),
        "generic_body": "" if controller or job.stage.body_template else generic_body(job, target),
        "stage_command": "" if controller else stage_command(job, target),
    }
    text = template_environment().get_template("job.j2").render(**context)
    leftover = [line for line in text.splitlines() if _PLACEHOLDER.search(line)]
    if leftover:
        raise RenderError(f"job {job.name}: rendered script still holds a placeholder: {leftover[0].strip()!r}")
    return text


_EXPERIMENT, _PYTHON, _TASK = "\0experiment", "\0python", 987654321


def stage_command(job: StageJob, target: RenderTarget) -> str:
    """The stage's argv as shell words, with the experiment, Python and chunk taken from the prologue's
    variables: what a script runs for the stage, from the one definition the controller uses too."""
    ctx = RunContext(target.experiment, target.experiment_path, target.workdir, target.profile, _EXPERIMENT)
    words = job.stage.argv(ctx, job, _TASK if job.is_array else 0, python=_PYTHON)
    variables = {_EXPERIMENT: '"$MORPHCPT_EXPERIMENT"', _PYTHON: '"$MORPHCPT_PYTHON"', str(_TASK): '"$CHUNK"'}
    return " ".join(variables.get(word, shell_quote(word)) for word in words)


def generic_body(job: StageJob, target: RenderTarget) -> str:
    """The body of a stage type without a template of its own: its command, run in the container."""
    return f"in_container {stage_command(job, target)}\n"


def _shell_name(job_name: str) -> str:
    return re.sub(r"\W", "_", job_name)


def _log_directories(jobs: list[StageJob], target: RenderTarget) -> list[Path]:
    """The directories the jobs' scheduler logs go to (their names may hold the scheduler's placeholders)."""
    paths = {Path(_log_path(job, target, _array_context(job, target, None))).parent for job in jobs}
    return sorted(paths | {target.logs_dir})


def submission_script(jobs: list[StageJob], target: RenderTarget, out_dir: Path) -> str:
    """The commands that submit `jobs` by hand, in dependency order: afterok on the jobs whose outputs a job
    reads, afterany on those it waits its turn behind (its entry's max_concurrent)."""
    scheduler = target.scheduler
    lines = [
        "#!/bin/bash",
        f"# Submit experiment {target.experiment.name} to {scheduler.name} ({target.profile.name})"
        " in dependency order.",
        "set -euo pipefail",
        f"cd {shell_quote(str(target.workdir))}",
        # Before any qsub: PBS Pro writes the -o file only when the job ends, and a missing directory then
        # sends it to undelivered/ while the job still reports success.
        "mkdir -p -- " + " ".join(shell_quote(str(d)) for d in _log_directories(jobs, target)),
        *scheduler.submit_preamble(),
    ]
    names = {job.name for job in jobs}
    for job in jobs:
        script = shell_quote(str(script_path(job, target, out_dir)))
        depends = ['"$' + _shell_name(d) + '"' for d in job.after if d in names]
        turns = ['"$' + _shell_name(d) + '"' for d in job.turn_after if d in names]
        lines.append(
            scheduler.submit_line(_shell_name(job.name), job.name, script, depends, job.array_size, after_any=turns)
        )
    return "\n".join(lines) + "\n"


def render_experiment(
    target: RenderTarget, out_dir: Path, only: list[str] | None = None
) -> tuple[list[tuple[StageJob, Path]], Path]:
    """Write every job script (or those named in `only`) and submit_all.sh; return what was written."""
    check_no_placeholders(target)
    jobs = list(build_graph(target.experiment))
    if only:
        unknown = sorted(set(only) - {job.name for job in jobs})
        if unknown:
            known = ", ".join(job.name for job in jobs)
            raise RenderError(f"unknown job(s) {', '.join(unknown)}; the experiment has: {known}")
        jobs = [job for job in jobs if job.name in only]
    for problem in training_resource_problems(target, jobs):
        print(f"warning: {problem}", file=sys.stderr)
    rendered = [(job, script_path(job, target, out_dir), render_job(job, target)) for job in jobs]
    suffix = target.scheduler.script_suffix
    submit_path = out_dir / ("submit_all.sh" if suffix == ".sh" else f"submit_all{suffix}.sh")
    out_dir.mkdir(parents=True, exist_ok=True)
    target.logs_dir.mkdir(parents=True, exist_ok=True)
    for _, path, text in rendered:
        _write_executable(path, text)
    _write_executable(submit_path, submission_script(jobs, target, out_dir))
    return [(job, path) for job, path, _ in rendered], submit_path


def _write_executable(path: Path, text: str) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o755)
