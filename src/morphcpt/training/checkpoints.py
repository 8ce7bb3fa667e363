"""Checkpoint directories for one run: stable across jobs, atomic, and tied to the config that made them.

checkpoints/<run>/
  run_config.json     the settings that must not change between resumes (a mismatch is an error)
  step_000050/        one checkpoint: HF model files + trainer_state.pt; written as .tmp-step_000050, renamed
  latest              name of the newest complete checkpoint (written last, atomically)
  metrics.jsonl       one line per logged step; lines after the resumed step are dropped on resume
  done.json           written when the run reached its target step
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path
from typing import Any

from morphcpt.data.markers import atomic_output, write_json_atomic
from morphcpt.errors import MorphcptError

KEEP_CHECKPOINTS = 2
STEP_NAME = re.compile(r"step_\d{6,}")


def step_name(step: int) -> str:
    return f"step_{step:06d}"


def check_run_config(directory: Path, settings: dict[str, Any]) -> None:
    """Record the settings on first use. A directory made with other settings (an edited parameter, new
    data) is kept under a new name, `<run>.superseded-<UTC time>`, and the run starts over: the graph asked for
    a new run, and the old one stays on disk for comparison."""
    path = directory / "run_config.json"
    settings = json.loads(json.dumps(settings))
    if path.exists():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(recorded) | set(settings) if recorded.get(k) != settings.get(k))
        if not changed:
            return
        aside = directory.with_name(f"{directory.name}.superseded-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
        directory.rename(aside)
        print(f"[morphcpt] {directory} was made with other settings ({', '.join(changed)}); kept as {aside}")
    directory.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, settings)


def latest_checkpoint(directory: Path) -> Path | None:
    pointer = directory / "latest"
    if not pointer.exists():
        return None
    path = directory / pointer.read_text(encoding="utf-8").strip()
    if not (path / "trainer_state.pt").exists():
        raise MorphcptError(f"{pointer} names {path.name}, which is incomplete; remove {pointer} to start over")
    return path


def publish_checkpoint(directory: Path, staging: Path, step: int) -> Path:
    """Move a fully written staging directory into place, point `latest` at it, prune old ones."""
    final = directory / step_name(step)
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    with atomic_output(directory / "latest") as tmp:
        tmp.write_text(final.name + "\n", encoding="utf-8")
    # Exactly step_NNNNNN: a `step_000050.hf` conversion made for evaluation beside one is not a checkpoint.
    steps = sorted(p for p in directory.glob("step_*") if STEP_NAME.fullmatch(p.name))
    for old in steps[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def staging_dir(directory: Path, step: int) -> Path:
    path = directory / f".tmp-{step_name(step)}"
    if path.exists():
        shutil.rmtree(path)  # left by a job killed while saving
    path.mkdir(parents=True)
    return path


def truncate_metrics(path: Path, last_step: int) -> None:
    """Drop lines logged after the checkpoint we resume from: they will be logged again."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8").splitlines()
    kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= last_step]
    with atomic_output(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def append_metrics(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
