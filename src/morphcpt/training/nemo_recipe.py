"""The NeMo 2 backend: NeMo's own pretrain recipe named by `training.recipe` (default `gemma3_1b`), set to the
run's plan, for continued pretraining from the imported `training.pretrained` weights with resume from the run's
stable checkpoint directory. nemo_backend.NemoBackend is what the rest of morphcpt calls.

NeMo is imported inside the functions: the rest of morphcpt runs without it, and on clusters it comes from
the container. Without a GPU everything up to building the model can be checked (tests/test_nemo_recipe.py
does, in its own environment); the model itself needs CUDA.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TypeGuard

from morphcpt import exit_codes
from morphcpt.config import Experiment
from morphcpt.data.indexed import prefix_files
from morphcpt.data.markers import atomic_output
from morphcpt.errors import MorphcptError
from morphcpt.training.backends import TrainResult
from morphcpt.training.plan import RunPlan

# Validation batches per validation run (the recipe's default; part of how many samples the data must hold).
LIMIT_VAL_BATCHES = 32
LIMIT_TEST_BATCHES = 0


def pretrained_checkpoint_dir(experiment: Experiment) -> Path:
    """Where the one-time HF -> NeMo import of training.pretrained is written."""
    return Path(experiment.training.checkpoints_dir) / "pretrained" / experiment.training.pretrained.replace("/", "--")


def nemo_available() -> bool:
    try:
        import nemo.collections.llm  # noqa: F401
        import nemo_run  # noqa: F401
    except ImportError:
        return False
    return True


def _is_recipe(module: object) -> TypeGuard[ModuleType]:
    return isinstance(module, ModuleType) and callable(getattr(module, "pretrain_recipe", None))


def known_recipes() -> list[str]:
    """The pretrain recipes this NeMo ships (the modules of nemo.collections.llm.recipes with pretrain_recipe)."""
    try:
        from nemo.collections.llm import recipes
    except ImportError:
        return []
    return sorted(name for name, value in vars(recipes).items() if _is_recipe(value))


def recipe_module(name: str) -> ModuleType:
    """NeMo's recipe module `name` (`nemo.collections.llm.<name>`, else `nemo.collections.llm.recipes.<name>`)."""
    from nemo.collections import llm

    if name.isidentifier():
        for found in (getattr(llm, name, None), getattr(getattr(llm, "recipes", None), name, None)):
            if _is_recipe(found):
                return found
        qualified = f"nemo.collections.llm.recipes.{name}"
        try:
            imported = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            if exc.name != qualified:
                raise  # the recipe exists but needs something that is missing: show that, not "unknown"
        else:
            if _is_recipe(imported):
                return imported
    raise MorphcptError(
        f"training.recipe: {name!r} is not a NeMo pretrain recipe (no nemo.collections.llm.recipes.{name}"
        f".pretrain_recipe); this NeMo has: {', '.join(known_recipes()) or 'none that import'}"
    )


def build_recipe(experiment: Experiment, plan: RunPlan, deadline: float | None = None, time_now: float = 0.0) -> Any:
    """The plan's pretrain recipe (`plan.recipe`, a nemo_run.Partial), with every setting from the plan."""
    import nemo_run as run
    from lightning.pytorch.callbacks import Timer
    from lightning.pytorch.loggers import WandbLogger
    from nemo import lightning as nl
    from nemo.collections.common.tokenizers.huggingface.auto_tokenizer import AutoTokenizer
    from nemo.collections.llm.gpt.data.pre_training import PreTrainingDataModule

    factory = recipe_module(plan.recipe).pretrain_recipe
    arguments: dict[str, Any] = {
        "dir": str(plan.checkpoint_dir),
        "name": plan.run,
        "num_nodes": plan.num_nodes,
        "num_gpus_per_node": plan.gpus_per_node,
    }
    # Recipes that take seq_length size the model with it; for the others the model's config is set below.
    takes_seq_length = "seq_length" in inspect.signature(factory).parameters
    if takes_seq_length:
        arguments["seq_length"] = plan.seq_length
    recipe = factory(**arguments)
    if not takes_seq_length:
        recipe.model.config.seq_length = plan.seq_length
    trainer = recipe.trainer
    trainer.max_steps = plan.max_steps
    trainer.val_check_interval = plan.val_interval
    trainer.log_every_n_steps = plan.log_interval
    trainer.limit_val_batches = LIMIT_VAL_BATCHES
    trainer.limit_test_batches = LIMIT_TEST_BATCHES
    trainer.strategy.tensor_model_parallel_size = plan.tensor_parallel
    trainer.strategy.pipeline_model_parallel_size = plan.pipeline_parallel
    if plan.precision != "bf16-mixed":
        trainer.plugins = run.Config(nl.MegatronMixedPrecision, precision=plan.precision)
    if deadline is not None:
        # Lightning's Timer ends fit() at the budget; ModelCheckpoint(save_last=True) then writes the last state.
        seconds = max(int(deadline - time_now), 60)
        trainer.callbacks = [*(trainer.callbacks or []), run.Config(Timer, duration=timedelta(seconds=seconds))]

    recipe.data = run.Config(
        PreTrainingDataModule,
        paths=[str(plan.data_path)],
        seq_length=plan.seq_length,
        global_batch_size=plan.global_batch_size,
        micro_batch_size=plan.micro_batch_size,
        tokenizer=run.Config(AutoTokenizer, pretrained_model_name=experiment.data.tokenizer),
        split="98,2,0",
        seed=plan.seed,
        index_mapping_dir=str(plan.data_path.parent / "nemo_index"),
        num_workers=2,
    )

    optim = recipe.optim
    optim.config.lr = plan.lr
    optim.config.weight_decay = plan.weight_decay
    optim.config.clip_grad = plan.clip_grad
    optim.config.bf16 = plan.precision == "bf16-mixed"
    optim.config.fp16 = plan.precision == "16-mixed"
    optim.lr_scheduler.warmup_steps = plan.warmup_steps
    optim.lr_scheduler.min_lr = plan.min_lr
    optim.lr_scheduler.max_steps = plan.max_steps

    log = recipe.log
    # A stable directory per run (no date-stamped versions), so every job of the run resumes the same state.
    log.log_dir = str(plan.checkpoint_dir)
    log.name = plan.run
    log.use_datetime_version = False
    log.ckpt.every_n_train_steps = plan.checkpoint_interval
    log.ckpt.train_time_interval = None
    log.ckpt.save_last = True
    log.ckpt.save_top_k = 2
    offline = not os.environ.get("WANDB_API_KEY")
    log.wandb = run.Config(
        WandbLogger, project=plan.wandb_project, name=plan.wandb_name, offline=offline, log_model=False
    )

    # Continued pretraining: the run's own latest checkpoint when there is one, else the imported weights.
    recipe.resume = run.Config(
        nl.AutoResume,
        resume_if_exists=True,
        resume_ignore_no_checkpoint=True,
        restore_config=run.Config(nl.RestoreConfig, path=str(pretrained_checkpoint_dir(experiment))),
    )
    return recipe


def recipe_settings(recipe: Any) -> dict[str, Any]:
    """The settings that matter, read back from the built recipe (what the table and the tests compare)."""
    trainer, data, optim = recipe.trainer, recipe.data, recipe.optim
    world = trainer.devices * trainer.num_nodes
    model_parallel = trainer.strategy.tensor_model_parallel_size * trainer.strategy.pipeline_model_parallel_size
    data_parallel = world // model_parallel
    return {
        "recipe": recipe.model.__fn_or_cls__.__name__,
        "seq_length": data.seq_length,
        "model_seq_length": recipe.model.config.seq_length,
        "global_batch_size": data.global_batch_size,
        "micro_batch_size": data.micro_batch_size,
        "devices": trainer.devices,
        "num_nodes": trainer.num_nodes,
        "tensor_parallel": trainer.strategy.tensor_model_parallel_size,
        "pipeline_parallel": trainer.strategy.pipeline_model_parallel_size,
        "data_parallel": data_parallel,
        "grad_accumulation": data.global_batch_size // (data_parallel * data.micro_batch_size),
        "optimizer": optim.config.optimizer,
        "lr": optim.config.lr,
        "min_lr": optim.lr_scheduler.min_lr,
        "warmup_steps": optim.lr_scheduler.warmup_steps,
        "scheduler": optim.lr_scheduler.__fn_or_cls__.__name__,
        "weight_decay": optim.config.weight_decay,
        "clip_grad": optim.config.clip_grad,
        "bf16": optim.config.bf16,
        "max_steps": trainer.max_steps,
        "checkpoint_every": recipe.log.ckpt.every_n_train_steps,
        "val_every": trainer.val_check_interval,
        "log_every": trainer.log_every_n_steps,
        "data_paths": list(data.paths),
        "checkpoint_dir": recipe.log.log_dir,
        "resume_if_exists": recipe.resume.resume_if_exists,
        "restore_from": recipe.resume.restore_config.path,
        "wandb": f"{recipe.log.wandb.project}/{recipe.log.wandb.name}",
    }


def check_recipe(recipe: Any, plan: RunPlan, require_data: bool = True) -> dict[str, Any]:
    settings = recipe_settings(recipe)
    gbs, mbs = settings["global_batch_size"], settings["micro_batch_size"]
    if gbs != settings["data_parallel"] * mbs * settings["grad_accumulation"]:
        raise MorphcptError(
            f"run {plan.run}: GBS {gbs} != DP {settings['data_parallel']} x MBS {mbs} x grad accumulation"
        )
    if require_data:
        for path in settings["data_paths"]:
            missing = [str(p) for p in prefix_files(Path(path)) if not p.exists()]
            if missing:
                raise MorphcptError(f"run {plan.run}: data prefix {path}: missing {', '.join(missing)}")
    if not settings["resume_if_exists"]:
        raise MorphcptError(f"run {plan.run}: resume_if_exists is off; a resubmitted job would start over")
    return settings


def serialize(recipe: Any) -> str:
    from nemo_run.core.serialization.yaml import YamlSerializer

    return YamlSerializer().serialize(recipe)


def describe_recipes(experiment: Experiment, plans: list[RunPlan]) -> str:
    """For `train --dry-run`: build, check and serialize each run's recipe, when NeMo is installed here."""
    if not nemo_available():
        return (
            f"NeMo is not installed here: the {experiment.training.recipe} recipe was not built "
            "(make nemo-check builds it in its own env)."
        )
    lines = []
    for plan in plans:
        recipe = build_recipe(experiment, plan)
        check_recipe(recipe, plan, require_data=False)
        path = plan.checkpoint_dir / "recipe.yaml"
        with atomic_output(path) as tmp:
            tmp.write_text(serialize(recipe), encoding="utf-8")
        lines.append(f"{plan.run}: NeMo recipe built and checked; serialized to {path}")
    return "\n".join(lines)


def build_datamodule(recipe: Any, plan: RunPlan) -> Any:
    """Build the recipe's PreTrainingDataModule and its megatron datasets (works on CPU)."""
    import fiddle as fdl
    import torch.distributed as dist
    from nemo.collections.llm.gpt.data.pre_training import build_pretraining_datamodule

    datamodule = fdl.build(recipe.data)
    # NeMo's helper opens a one-process group (megatron builds indices on rank 0) through env:// rendezvous.
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(_free_port()))
    try:
        build_pretraining_datamodule(
            datamodule,
            trainer_max_steps=plan.max_steps,
            trainer_val_check_interval=plan.val_interval,
            trainer_limit_val_batches=LIMIT_VAL_BATCHES,
            trainer_limit_test_batches=LIMIT_TEST_BATCHES,
        )
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return datamodule


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_STEP = re.compile(r"-step=(\d+)")


def _last_step(plan: RunPlan) -> int:
    steps = [int(m.group(1)) for p in plan.checkpoint_dir.glob("**/checkpoints/*") if (m := _STEP.search(p.name))]
    return max(steps, default=0)


def train_nemo(experiment: Experiment, plan: RunPlan, deadline: float | None) -> TrainResult:
    """Run the recipe in this process (torchrun starts one per GPU). Exit 3 when the budget ended the fit."""
    import time

    import fiddle as fdl

    if not (pretrained_checkpoint_dir(experiment) / "context").exists() and _last_step(plan) == 0:
        raise MorphcptError(
            f"no imported weights at {pretrained_checkpoint_dir(experiment)}: run `morphcpt import-model` first"
        )
    recipe = build_recipe(experiment, plan, deadline, time.time())
    check_recipe(recipe, plan)
    before = _last_step(plan)
    fdl.build(recipe)()
    step = _last_step(plan)
    status = exit_codes.OK if step >= plan.max_steps else exit_codes.TIME_BUDGET_REACHED
    return TrainResult(status, step, None, before or None)


def import_pretrained(experiment: Experiment) -> str:
    """One-time HF -> NeMo conversion with NeMo's importer into the model of `training.recipe` (needs HF_TOKEN
    for gated weights such as Gemma's)."""
    import fiddle as fdl
    from nemo.collections import llm

    out = pretrained_checkpoint_dir(experiment)
    if (out / "context").exists() and (out / "weights").exists():
        return f"already imported: {out}"
    model = fdl.build(recipe_module(experiment.training.recipe).model())
    llm.import_ckpt(model=model, source=f"hf://{experiment.training.pretrained}", output_path=out)
    return f"imported {experiment.training.pretrained} to {out}"


def final_checkpoint(plan: RunPlan) -> Path:
    """NeMo writes <checkpoint_dir>/<name>/checkpoints/*-last; the newest such directory is the final one."""
    # Only real checkpoints (context/ and weights/): not an evaluation's `<checkpoint>.hf` conversion beside one.
    candidates = sorted(
        (
            p
            for p in plan.checkpoint_dir.glob("**/checkpoints/*last*")
            if (p / "context").is_dir() and (p / "weights").is_dir()
        ),
        key=lambda p: p.stat().st_mtime,
    )
    if not candidates:
        raise MorphcptError(f"no NeMo checkpoint ending in 'last' under {plan.checkpoint_dir}")
    return candidates[-1]


def export_hf(checkpoint: Path, out_dir: Path) -> None:
    """NeMo's own exporter, which knows how the model's fused weights (Gemma 3's QKV) map back to HF."""
    from nemo.collections import llm

    llm.export_ckpt(path=checkpoint, target="hf", output_path=out_dir, overwrite=True)
