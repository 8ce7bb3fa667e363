"""Final checkpoint -> Hugging Face model directory (`models/<run>/`) that evaluation loads.

CPU-backend checkpoints are HF already and are copied with the tokenizer. NeMo checkpoints go through
NeMo's own exporter (`llm.export_ckpt(target="hf")`), which knows how Gemma 3's fused QKV weights map back.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from morphcpt.config import Experiment
from morphcpt.data.markers import marker_path, read_valid_marker, write_marker
from morphcpt.errors import MorphcptError
from morphcpt.training import checkpoints as ckpt
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


def _final_checkpoint(plan: RunPlan) -> Path:
    done = plan.checkpoint_dir / "done.json"
    if not done.exists():
        raise MorphcptError(f"run {plan.run} has not reached its target step ({done} missing); train it first")
    latest = ckpt.latest_checkpoint(plan.checkpoint_dir)
    if latest is None:
        raise MorphcptError(f"{plan.checkpoint_dir} has no checkpoint")
    return latest


def _export_nemo(checkpoint: Path, out_dir: Path) -> None:
    from nemo.collections import llm  # the NeMo container provides it

    llm.export_ckpt(path=checkpoint, target="hf", output_path=out_dir, overwrite=True)


def export_run(experiment: Experiment, plan: RunPlan) -> dict[str, Any]:
    checkpoint = _final_checkpoint(plan) if plan.backend == "cpu" else _nemo_final(plan)
    out_dir = plan.model_dir
    parameters = {"checkpoint": str(checkpoint), "tokenizer": experiment.data.tokenizer}
    outputs = [out_dir / "config.json"]
    done = read_valid_marker(out_dir, outputs, parameters)
    if done is not None:
        return {**done, "skipped": True}
    marker_path(out_dir).unlink(missing_ok=True)
    staging = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    if plan.backend == "cpu":
        for item in checkpoint.iterdir():
            if item.name != "trainer_state.pt":
                shutil.copy2(item, staging / item.name)
    else:
        _export_nemo(checkpoint, staging)
    save_tokenizer(experiment.data.tokenizer, staging)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    write_marker(out_dir, outputs, parameters, run=plan.run)
    return {"model_dir": str(out_dir), "skipped": False}


def _nemo_final(plan: RunPlan) -> Path:
    """NeMo writes <checkpoint_dir>/<name>/checkpoints/*-last; the newest such directory is the final one."""
    candidates = sorted(plan.checkpoint_dir.glob("**/checkpoints/*last*"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        raise MorphcptError(f"no NeMo checkpoint ending in 'last' under {plan.checkpoint_dir}")
    return candidates[-1]
