"""Final checkpoint -> Hugging Face model directory (`models/<run>/`) that evaluation loads.

The run's training backend finds the final checkpoint and writes the model (CPU checkpoints are HF already
and are copied; NeMo's go through `llm.export_ckpt(target="hf")`); this module adds the tokenizer and makes
the result atomic and skippable on rerun, the same for every backend.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from morphcpt.config import Experiment
from morphcpt.context import Layout
from morphcpt.data.markers import marker_path, read_valid_marker, write_marker
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
    marker_path(out_dir).unlink(missing_ok=True)
    staging = out_dir.with_name(f".tmp-{out_dir.name}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    backend.export(experiment, checkpoint, staging)
    save_tokenizer(experiment.data.tokenizer, staging)
    shutil.rmtree(out_dir, ignore_errors=True)
    staging.rename(out_dir)
    write_marker(out_dir, outputs, parameters, run=plan.run)
    return {"model_dir": str(out_dir), "skipped": False}
