"""What a stage type is: one class that knows its parameters, its jobs' command, its outputs and its marker.

A stage type is registered once (built-ins in this package, others through the `morphcpt.stages` entry-point
group) and used by any number of `stages:` entries of an experiment. Everything the renderer, the controller
and `morphcpt graph` need to know about a stage comes from here; none of them branches on a stage's name.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from morphcpt.data.markers import marker_path
from morphcpt.progress import TaskProgress, progress_file, read_progress

if TYPE_CHECKING:
    from morphcpt.context import RunContext
    from morphcpt.graph import StageJob


class StageParams(BaseModel):
    """A stage entry's parameters (its `params:` plus its `foreach:` values). Unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Completion:
    """Whether one task's outputs on disk are complete for the parameters and inputs asked for now."""

    done: bool
    why: str = ""  # when not done: the reason, worded to follow "reruns because ..."

    @classmethod
    def complete(cls) -> Completion:
        return cls(True)

    @classmethod
    def rerun(cls, why: str) -> Completion:
        return cls(False, why)


class Stage:
    """Base of every stage type. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str]  # the `uses:` value
    Params: ClassVar[type[StageParams]] = StageParams
    resources_key: ClassVar[str | None] = None  # the profile's `resources:` entry [default: name]
    array_over: ClassVar[str | None] = None  # "chunks": one task per chunk (data.num_chunks)
    resumable: ClassVar[bool] = False  # may exit 3 at its time budget and be resubmitted to continue
    # Job body template under job_templates/ (e.g. "stages/split.j2"); None renders `argv` generically.
    body_template: ClassVar[str | None] = None
    # Python modules the job imports (checked inside the container by verify-setup).
    job_modules: ClassVar[tuple[str, ...]] = ()

    def modules(self, experiment: Any) -> tuple[str, ...]:
        """The Python modules this stage's job imports in this experiment (what a container must provide)."""
        return self.job_modules

    # ---------------------------------------------------------------- graph

    def check(self, experiment: Any, params: StageParams) -> list[str]:
        """Problems with these parameters in this experiment, each as 'key: message'."""
        return []

    def bindings(self, experiment: Any, params: StageParams) -> dict[str, str]:
        """Extra names an entry's `after:` may use, e.g. a training run's `{variant}`."""
        return {}

    def array_size(self, experiment: Any, params: StageParams) -> int | None:
        if self.array_over is None:
            return None
        if self.array_over == "chunks":
            return int(experiment.data.num_chunks)
        raise ValueError(f"stage {self.name}: unknown array axis {self.array_over!r}")

    def outputs(self, ctx: RunContext, job: StageJob) -> list[Path]:
        """Every path the job writes (files or directories), relative to the workdir, for overlap checks."""
        return []

    # ---------------------------------------------------------------- running

    def argv(self, ctx: RunContext, job: StageJob, task: int, python: str = sys.executable) -> list[str]:
        """The job's command line for one task (0 = a plain job, 1..N = array task / chunk)."""
        command = [python, "-m", "morphcpt", "run-stage", "--experiment", str(ctx.experiment_ref), job.name]
        return [*command, "--task", str(task)] if job.is_array else command

    def run(self, ctx: RunContext, job: StageJob, task: int) -> int:
        """Run one task in this process (what `morphcpt run-stage` calls); returns the exit status."""
        raise NotImplementedError(f"stage type {self.name} runs through its own command, not run-stage")

    def completion(self, ctx: RunContext, job: StageJob, task: int) -> Completion:
        """Done when the task's marker records the parameters and input checksums asked for now."""
        return marker_completion(self.marker(ctx, job, task), self.fingerprint(ctx, job, task))

    def marker(self, ctx: RunContext, job: StageJob, task: int) -> Path:
        raise NotImplementedError

    def fingerprint(self, ctx: RunContext, job: StageJob, task: int) -> dict[str, Any]:
        """What the marker must record for the task to count as done: parameters and input checksums."""
        return {}

    def progress(self, ctx: RunContext, job: StageJob, task: int) -> tuple[int | None, str]:
        """A resumable task's progress on disk (e.g. its last checkpoint's step) and a note on its last attempt
        (e.g. how long start-up took); the controller counts an attempt that did not advance as a failure."""
        return None, ""

    def report(self, progress_dir: Path, ctx: RunContext, job: StageJob, task: int) -> TaskProgress | None:
        """How far the task's running (or last) attempt got, for `morphcpt status`: what the task itself
        reported (morphcpt.progress), by default."""
        return read_progress(progress_file(progress_dir, job.name, task))

    def invalidate(self, ctx: RunContext, job: StageJob, task: int) -> None:
        """Make the task incomplete (for `morphcpt retry` of a finished stage): its marker goes."""
        self.marker(ctx, job, task).unlink(missing_ok=True)


# ---------------------------------------------------------------- marker comparison


def _leaves(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        found: dict[str, Any] = {}
        for key, item in value.items():
            found.update(_leaves(item, f"{prefix}.{key}" if prefix else str(key)))
        return found
    return {prefix: value}


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def describe_changes(recorded: dict[str, Any], expected: dict[str, Any]) -> str:
    """'expand_prop changed (0.1 -> 0.2)' for the leaves that differ; input checksums are named as inputs."""
    old, new = _leaves(recorded), _leaves(expected)
    changed = [key for key in new if old.get(key, _MISSING) != new[key]]
    if not changed:
        return ""
    parts = []
    for key in changed[:3]:
        leaf = key.rsplit(".", 1)[-1]
        if key.startswith("inputs."):
            parts.append(f"input {key.removeprefix('inputs.')} changed")
        elif key not in old:
            parts.append(f"{leaf} is new ({_short(new[key])})")
        else:
            parts.append(f"{leaf} changed ({_short(old[key])} -> {_short(new[key])})")
    more = f" and {len(changed) - 3} more" if len(changed) > 3 else ""
    return ", ".join(parts) + more


_MISSING = object()


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def marker_completion(
    marker: Path, expected: dict[str, Any], key: str | None = "parameters", outputs_in: Path | None = None
) -> Completion:
    """Compare the marker's recorded `key` section with `expected` (only the keys `expected` names: a marker
    may record more, such as fingerprints only the job can compute), and check its outputs' sizes. Outputs
    are named relative to the marker's folder, or to `outputs_in` (a directory output such as a model)."""
    record = read_json(marker)
    if record is None:
        return Completion.rerun(f"{marker.name} is missing")
    recorded = record if key is None else record.get(key, {})
    expected = json.loads(json.dumps(expected))
    subset = {k: recorded.get(k, _MISSING) for k in expected}
    if subset != expected:
        return Completion.rerun(describe_changes({k: v for k, v in subset.items() if v is not _MISSING}, expected))
    for name, facts in record.get("outputs", {}).items():
        path = (outputs_in or marker.parent) / name
        if not path.exists():
            return Completion.rerun(f"output {name} is missing")
        if isinstance(facts, dict) and "bytes" in facts and path.stat().st_size != facts["bytes"]:
            return Completion.rerun(f"output {name} changed size")
    return Completion.complete()


def recorded_outputs(output: Path) -> dict[str, Any] | None:
    """The `outputs` section (names, sizes, checksums) of an upstream output's marker: a cheap input checksum."""
    record = read_json(marker_path(output))
    return None if record is None else record.get("outputs")
