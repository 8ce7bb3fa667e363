"""Final checkpoint -> Hugging Face model directory (`models/<run>/`) that evaluation loads.

The run's training backend finds the final checkpoint and writes the model (CPU checkpoints are HF already
and are copied; NeMo's go through `llm.export_ckpt(target="hf")`); this module adds the tokenizer and makes
the result atomic and skippable on rerun, the same for every backend.

Evaluation given a checkpoint instead of a model (`run_evaluation.py --models checkpoints/baseline`, the seed
plan's way) comes here too: `model_for_evaluation` recognises a NeMo 2 checkpoint, a directory of them, or a
CPU run's checkpoint directory, and converts it with the same backend export into `<path>.hf/` beside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from morphcpt.config import Experiment
from morphcpt.context import Layout
from morphcpt.data.markers import marker_path, read_valid_marker, write_marker
from morphcpt.errors import MorphcptError
from morphcpt.training.backends import get_backend
from morphcpt.training.plan import RunPlan


def save_tokenizer(tokenizer_name: str, out_dir: Path) -> None:
    """The experiment's tokenizer in the form AutoTokenizer.from_pretrained(out_dir) reads."""
    path = Path(tokenizer_name)
    if path.suffix == ".json":
        from transformers import PreTrainedTokenizerFast

        vocab = json.loads(path.read_text(encoding="utf-8"))
        specials = {t["content"] for t in vocab.get("added_tokens", [])}
        named = {
            k: v for k, v in (("eos_token", "<eos>"), ("pad_token", "<pad>"), ("bos_token", "<bos>")) if v in specials
        }
        PreTrainedTokenizerFast(tokenizer_file=str(path), **named).save_pretrained(out_dir)
    elif path.is_dir():
        for item in path.iterdir():
            if item.is_file():
                shutil.copy2(item, out_dir / item.name)
    else:
        from transformers import AutoTokenizer

        AutoTokenizer.from_pretrained(tokenizer_name).save_pretrained(out_dir)


def export_inputs(layout: Layout, run: str) -> dict[str, Any]:
    from morphcpt.stages.export import export_inputs as recorded

    return recorded(layout, run)


def export_run(experiment: Experiment, plan: RunPlan) -> dict[str, Any]:
    backend = get_backend(plan.backend)
    checkpoint = backend.final_checkpoint(plan)
    out_dir = plan.model_dir
    parameters = {
        "checkpoint": str(checkpoint),
        "tokenizer": experiment.data.tokenizer,
        # The finished run's step and loss: a retrained run with the same step numbers is a new export.
        "trained": export_inputs(Layout(experiment), plan.run),
    }
    outputs = [out_dir / "config.json"]
    done = read_valid_marker(out_dir, outputs, parameters)
    if done is not None:
        return {**done, "skipped": True}
    write_model(plan.backend, experiment, checkpoint, out_dir, experiment.data.tokenizer)
    write_marker(out_dir, outputs, parameters, run=plan.run)
    return {"model_dir": str(out_dir), "skipped": False}


def write_model(
    backend_name: str, experiment: Experiment | None, checkpoint: Path, out_dir: Path, tokenizer: str | None
) -> None:
    """The backend's export of `checkpoint` plus the tokenizer (`tokenizer`, else the one the export wrote,
    else a NeMo checkpoint's own), written beside `out_dir` and renamed into place: a killed export leaves no
    folder that looks like a model."""
    marker_path(out_dir).unlink(missing_ok=True)
    staging = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        get_backend(backend_name).export(experiment, checkpoint, staging)
        if tokenizer is not None:
            save_tokenizer(tokenizer, staging)
        elif not has_tokenizer(staging):
            if not (checkpoint / NEMO_TOKENIZER).is_dir():
                raise MorphcptError(
                    f"{checkpoint} holds no tokenizer: pass --tokenizer (the experiment's data.tokenizer, e.g. "
                    "google/gemma-3-1b-pt or data/demo/tokenizer/tokenizer.json)"
                )
            save_tokenizer(str(checkpoint / NEMO_TOKENIZER), staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)


# A NeMo 2 checkpoint is a directory holding these two: the model's config and io artifacts, and its weights.
NEMO_PARTS = ("context", "weights")
NEMO_TOKENIZER = Path("context") / "nemo_tokenizer"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")
_STEP = re.compile(r"step=(\d+)")


def has_tokenizer(directory: Path) -> bool:
    return any((directory / name).is_file() for name in _TOKENIZER_FILES)


def is_nemo_checkpoint(path: Path) -> bool:
    return all((path / part).is_dir() for part in NEMO_PARTS)


def is_cpu_checkpoint(path: Path) -> bool:
    from morphcpt.training.cpu_backend import TRAINER_STATE

    return (path / "config.json").is_file() and (path / TRAINER_STATE).is_file()


def _nemo_order(path: Path) -> tuple[int, bool, int]:
    # The highest step; at equal steps the `-last` copy NeMo keeps for resuming; then the newest.
    match = _STEP.search(path.name)
    return (int(match.group(1)) if match else -1, path.name.endswith("-last"), path.stat().st_mtime_ns)


def find_checkpoint(path: Path) -> tuple[str, Path] | None:
    """(backend, checkpoint) when `path` is a training checkpoint or holds some: a NeMo 2 checkpoint (a
    directory with context/ and weights/), a directory of them (NeMo's <dir>/<name>/checkpoints/...: the
    latest is taken), a CPU checkpoint (HF files + trainer_state.pt) or a CPU run's directory (its `latest`).
    None for anything else: a Hugging Face model folder or a hub id is loaded as it is."""
    if not path.is_dir():
        return None
    if is_nemo_checkpoint(path):
        return "nemo", path
    if is_cpu_checkpoint(path):
        return "cpu", path
    if (path / "config.json").is_file():
        return None
    if (path / "latest").is_file():
        from morphcpt.training.checkpoints import latest_checkpoint

        latest = latest_checkpoint(path)
        if latest is not None and is_cpu_checkpoint(latest):
            return "cpu", latest
    found = [p.parent for p in path.glob("**/weights") if is_nemo_checkpoint(p.parent)]
    if found:
        return "nemo", max(found, key=_nemo_order)
    return None


def converted_dir(path: Path) -> Path:
    """Where a checkpoint given as `path` is converted: `<path>.hf` beside it (not inside a checkpoints
    directory's own names: NeMo resumes from `*last`, the CPU trainer prunes `step_NNNNNN`)."""
    return path.with_name(path.name + ".hf")


def _checkpoint_identity(checkpoint: Path) -> str:
    """Sizes and modification times of the checkpoint's files: a rewritten checkpoint is converted again."""
    digest = hashlib.sha256()
    for item in sorted(p for p in checkpoint.rglob("*") if p.is_file()):
        stat = item.stat()
        digest.update(f"{item.relative_to(checkpoint)}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def conversion_parameters(backend_name: str, checkpoint: Path, out_dir: Path, tokenizer: str | None) -> dict[str, Any]:
    """What a converted model depends on. The checkpoint is named relative to the folder it is converted
    into, so a conversion made inside the container (repository at /workspace) is valid on the host."""
    return {
        "backend": backend_name,
        "checkpoint": os.path.relpath(checkpoint, out_dir.parent),
        "files": _checkpoint_identity(checkpoint),
        "tokenizer": tokenizer,
    }


def container_command() -> str:
    """This process's command line, run inside the NeMo container (whose repository is the working directory)."""
    arguments = list(sys.orig_argv[1:])
    if arguments and Path(arguments[0]).name == "morphcpt":
        arguments = ["-m", "morphcpt", *arguments[1:]]  # the console script is not installed in the image
    elif arguments and Path(arguments[0]).is_absolute():
        try:
            arguments[0] = str(Path(arguments[0]).relative_to(Path.cwd()))
        except ValueError:
            pass
    return shlex.join(["containers/run_in_enroot.sh", "python", *arguments])


def _nemo_importable() -> bool:
    try:
        import nemo.collections.llm  # noqa: F401
    except ImportError:
        return False
    return True


def model_for_evaluation(model: str, tokenizer: str | None = None) -> str:
    """What HFScorer loads for `model`: `model` itself (a HF folder, a hub id), or for a training checkpoint
    its Hugging Face conversion in `<model>.hf/`, made now unless a conversion of the same checkpoint is there."""
    path = Path(model)
    found = find_checkpoint(path)
    if found is None:
        return model
    backend_name, checkpoint = found
    out_dir = converted_dir(path)
    parameters = conversion_parameters(backend_name, checkpoint, out_dir, tokenizer)
    outputs = [out_dir / "config.json"]
    if read_valid_marker(out_dir, outputs, parameters) is not None:
        return str(out_dir)
    if backend_name == "nemo" and not _nemo_importable():
        raise MorphcptError(
            f"{checkpoint} is a NeMo 2 checkpoint; converting it to a Hugging Face model needs NeMo, which "
            f"{sys.executable} cannot import. Run this inside the NeMo container:\n  {container_command()}\n"
            "(paths outside the repository need a mount: containers/run_in_enroot.sh --mount /logs:/logs ...). "
            f"The conversion is kept in {out_dir}, and later runs here load it without NeMo."
        )
    print(f"{model}: converting {backend_name} checkpoint {checkpoint} to a Hugging Face model in {out_dir}")
    write_model(backend_name, None, checkpoint, out_dir, tokenizer)
    write_marker(out_dir, outputs, parameters, model=model)
    return str(out_dir)
