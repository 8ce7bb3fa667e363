"""The tiny CPU backend: a small Gemma 3 from transformers trained on the run's indexed dataset through
megatron-core's GPTDataset, with the same checkpoint / resume / time-budget contract as the NeMo backend.

Deterministic given the seed: the sample order comes from GPTDataset's seeded shuffle, step s always reads
samples [s*GBS, (s+1)*GBS), the learning rate is a pure function of the step, and the optimizer and RNG
states are checkpointed, so a run stopped and resumed reaches the same loss as one that never stopped.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

from morphcpt import exit_codes
from morphcpt.config import Experiment
from morphcpt.data.markers import write_json_atomic
from morphcpt.data.tokenizer import load_tokenizer
from morphcpt.progress import task_reporter
from morphcpt.training import checkpoints as ckpt
from morphcpt.training.backends import TrainResult
from morphcpt.training.data import build_gpt_datasets, check_counts, check_dataset
from morphcpt.training.plan import RunPlan

VALIDATION_BATCHES = 2


def tiny_model_config(plan: RunPlan, vocab_size: int, eod: int) -> Any:
    from transformers import Gemma3TextConfig

    settings: dict[str, Any] = {
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "intermediate_size": 128,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "head_dim": 32,
        **plan.tiny_model,
    }
    return Gemma3TextConfig(
        vocab_size=vocab_size,
        max_position_embeddings=plan.seq_length,
        sliding_window=plan.seq_length,
        attention_dropout=0.0,
        eos_token_id=eod,
        pad_token_id=eod,
        bos_token_id=eod,
        **settings,
    )


def learning_rate(plan: RunPlan, step: int) -> float:
    """Linear warmup to lr, then cosine decay to min_lr at max_steps (NeMo's CosineAnnealing shape)."""
    if plan.warmup_steps and step < plan.warmup_steps:
        return plan.lr * (step + 1) / plan.warmup_steps
    span = max(plan.max_steps - plan.warmup_steps, 1)
    progress = min((step - plan.warmup_steps) / span, 1.0)
    return plan.min_lr + 0.5 * (plan.lr - plan.min_lr) * (1 + math.cos(math.pi * progress))


class _StopRequest:
    """SIGTERM (Slurm's walltime warning, scancel, PBS's qdel) asks for a checkpoint at the next step."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = signal.signal(signal.SIGTERM, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = True

    def restore(self) -> None:
        signal.signal(signal.SIGTERM, self._previous)


def _batch(dataset: Any, first: int, count: int) -> dict[str, Any]:
    import torch

    samples = [dataset[(first + i) % len(dataset)] for i in range(count)]
    return {key: torch.stack([torch.as_tensor(s[key]) for s in samples]) for key in ("tokens", "labels", "loss_mask")}


def _loss(model: Any, batch: dict[str, Any]) -> Any:
    import torch

    logits = model(input_ids=batch["tokens"].long()).logits.float()
    losses = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), batch["labels"].long().reshape(-1), reduction="none"
    )
    mask = batch["loss_mask"].reshape(-1).float()
    return (losses * mask).sum() / mask.sum().clamp(min=1.0)


def _validate(model: Any, dataset: Any, plan: RunPlan) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        losses = [
            float(_loss(model, _batch(dataset, i * plan.micro_batch_size, plan.micro_batch_size)))
            for i in range(VALIDATION_BATCHES)
        ]
    model.train()
    return sum(losses) / len(losses)


def _save(model: Any, optimizer: Any, directory: Path, step: int, loss: float | None) -> Path:
    import torch

    staging = ckpt.staging_dir(directory, step)
    model.save_pretrained(staging, safe_serialization=True)
    torch.save(
        {"step": step, "loss": loss, "optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state()},
        staging / "trainer_state.pt",
    )
    return ckpt.publish_checkpoint(directory, staging, step)


def _record_attempt(directory: Path, started: float, deadline: float | None) -> None:
    """How long this attempt's start-up took and what budget it had (attempt.json): the controller's evidence
    when an attempt stops at its budget without a new step, and a warning in the log when the budget is tight."""
    job_start = float(os.environ.get("MORPHCPT_JOB_START") or started)
    startup = max(0.0, started - job_start)
    record: dict[str, Any] = {"startup_seconds": round(startup, 1), "started": started}
    if deadline is not None:
        budget = max(0.0, deadline - job_start)
        record["budget_seconds"] = round(budget, 1)
        if budget < 3 * startup:
            print(
                f"[morphcpt] warning: the time budget ({budget:.0f} s) is less than 3x the start-up ({startup:.0f} s); "
                "most of each attempt goes to starting: raise the walltime or lower time_budget_margin_seconds",
                flush=True,
            )
    write_json_atomic(directory / "attempt.json", record)


def train_cpu(experiment: Experiment, plan: RunPlan, deadline: float | None = None) -> TrainResult:
    """Train until plan.max_steps, or until `deadline` (a time.time() value) draws near: then checkpoint and
    return status TIME_BUDGET_REACHED. Resumes from the run's latest checkpoint when there is one."""
    import torch
    from transformers import Gemma3ForCausalLM

    tokenizer = load_tokenizer(experiment.data.tokenizer)
    facts = check_dataset(plan.data_path, tokenizer.vocab_size, tokenizer.fingerprint)
    check_counts(facts, plan.seq_length)
    directory = plan.checkpoint_dir
    from morphcpt.context import Layout
    from morphcpt.stages.train import training_inputs

    settings = {
        **plan.fingerprint_settings(),
        "tokenizer": tokenizer.fingerprint,
        # The dataset's checksums as the merge recorded them: new data means a new run, not a resumed one.
        "inputs": training_inputs(Layout(experiment), plan.run),
    }
    ckpt.check_run_config(directory, settings)
    done = directory / "done.json"
    if done.exists():
        # A finished run is not touched again: rerunning the stage changes no byte of its outputs.
        record = json.loads(done.read_text(encoding="utf-8"))
        return TrainResult(exit_codes.OK, record["step"], record["loss"], record["resumed_from"])
    samples = plan.max_steps * plan.global_batch_size
    train_set, valid_set = build_gpt_datasets(
        plan.data_path,
        plan.seq_length,
        plan.seed,
        (samples, VALIDATION_BATCHES * plan.micro_batch_size),
        tokenizer.eod_id,
        tokenizer.vocab_size,
        plan.run,
    )
    torch.manual_seed(plan.seed)
    config = tiny_model_config(plan, tokenizer.vocab_size, tokenizer.eod_id)
    latest = ckpt.latest_checkpoint(directory)
    model = Gemma3ForCausalLM.from_pretrained(latest) if latest else Gemma3ForCausalLM(config)
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=plan.lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=plan.weight_decay
    )
    step, loss_value, resumed_from = 0, None, None
    if latest:
        state = torch.load(latest / "trainer_state.pt", weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        step, loss_value, resumed_from = state["step"], state["loss"], state["step"]
    metrics = directory / "metrics.jsonl"
    ckpt.truncate_metrics(metrics, step)
    accumulation = plan.global_batch_size // plan.micro_batch_size
    stop = _StopRequest()
    started = time.time()
    _record_attempt(directory, started, deadline)
    step_seconds = 0.0
    saved_at = step
    # The train stage is one task (0); `morphcpt status` shows steps/target from this report.
    reporter = task_reporter(0, "steps", plan.max_steps, interval=2.0)
    reporter.update(step)
    try:
        while step < plan.max_steps:
            # Leave room for one more step and a save; SIGTERM means the same.
            if stop.requested or (deadline is not None and time.time() + 2 * step_seconds + 5 > deadline):
                if saved_at != step:
                    _save(model, optimizer, directory, step, loss_value)
                return TrainResult(exit_codes.TIME_BUDGET_REACHED, step, loss_value, resumed_from)
            tick = time.time()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(plan, step)
            optimizer.zero_grad(set_to_none=True)
            total = 0.0
            for micro in range(accumulation):
                first = step * plan.global_batch_size + micro * plan.micro_batch_size
                loss = _loss(model, _batch(train_set, first, plan.micro_batch_size)) / accumulation
                loss.backward()
                total += float(loss)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), plan.clip_grad))
            optimizer.step()
            step += 1
            reporter.update(step)
            loss_value = total
            step_seconds = time.time() - tick
            record: dict[str, Any] = {}
            if step % plan.log_interval == 0 or step == plan.max_steps:
                record = {"loss": round(total, 6), "lr": learning_rate(plan, step - 1), "grad_norm": grad_norm}
            if step % plan.val_interval == 0 or step == plan.max_steps:
                record["val_loss"] = round(_validate(model, valid_set, plan), 6)
            if record:
                record.update(step=step, tokens=step * plan.global_batch_size * plan.seq_length)
                record["elapsed"] = round(time.time() - started, 3)
                ckpt.append_metrics(metrics, record)
            if step % plan.checkpoint_interval == 0 or step == plan.max_steps:
                _save(model, optimizer, directory, step, loss_value)
                saved_at = step
    finally:
        stop.restore()
        reporter.finish()
    write_json_atomic(directory / "done.json", {"step": step, "loss": loss_value, "resumed_from": resumed_from})
    return TrainResult(exit_codes.OK, step, loss_value, resumed_from)
