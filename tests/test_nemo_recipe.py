"""The NeMo 2 recipe for the three runs, built on CPU with the real recipe `training.recipe` names
(`nemo.collections.llm.gemma3_1b` for seapile-tl-cpt).

Runs in its own environment (`make nemo-check`, part of CI), since nemo-toolkit[llm] pins packages the
main environment does not. There MORPHCPT_REQUIRE_NEMO=1 turns the skip into a failure.

Not covered (needs GPUs): instantiating the Gemma 3 model, the fit itself, NeMo's save-on-Timer-stop and
the HF export of a trained checkpoint. Everything before that is checked: the settings, data paths, batch
arithmetic, schedule, resume, YAML serialization, and a PreTrainingDataModule over a real indexed dataset.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

if os.environ.get("MORPHCPT_REQUIRE_NEMO") != "1":
    pytest.importorskip("nemo.collections.llm", reason="NeMo is tested in its own env: make nemo-check")
    pytest.importorskip("nemo_run", reason="NeMo is tested in its own env: make nemo-check")

from conftest import REPO
from morphcpt.config import load_experiment
from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer
from morphcpt.data.preprocess import merge_variant, merged_prefix, preprocess_chunk
from morphcpt.data.split import split_corpus
from morphcpt.errors import MorphcptError
from morphcpt.training.export import save_tokenizer
from morphcpt.training.nemo_recipe import build_datamodule, build_recipe, check_recipe, recipe_settings, serialize
from morphcpt.training.plan import plan_for_run

EXPECTED = {
    "recipe": "Gemma3Model",
    "seq_length": 2048,
    "model_seq_length": 2048,
    "global_batch_size": 256,
    "micro_batch_size": 2,
    "devices": 8,
    "num_nodes": 1,
    "tensor_parallel": 1,
    "pipeline_parallel": 1,
    "data_parallel": 8,
    "grad_accumulation": 16,
    "optimizer": "adam",
    "lr": 1e-4,
    "min_lr": 1e-5,
    "warmup_steps": 500,
    "scheduler": "CosineAnnealingScheduler",
    "weight_decay": 0.1,
    "clip_grad": 1.0,
    "bf16": True,
    "max_steps": 10_000,
    "checkpoint_every": 1000,
    "val_every": 500,
    "log_every": 10,
    "resume_if_exists": True,
}


@pytest.mark.parametrize("run", ["baseline", "stochastok", "patok"])
def test_recipe_has_the_seed_settings_and_serializes(run: str, tmp_path: Path) -> None:
    from nemo_run.core.serialization.zlib_json import ZlibJSONSerializer

    experiment = load_experiment("seapile-tl-cpt")
    plan = plan_for_run(experiment, run)
    recipe = build_recipe(experiment, plan)
    settings = check_recipe(recipe, plan, require_data=False)
    assert {k: settings[k] for k in EXPECTED} == EXPECTED
    variant = experiment.runs[run].variant
    assert settings["data_paths"] == [f"data/processed/{variant}/all"]
    assert settings["checkpoint_dir"] == f"checkpoints/{run}"
    assert settings["restore_from"] == "checkpoints/pretrained/google--gemma-3-1b-pt"
    # YAML for people to read; nemo_run's own (zlib JSON) form must round-trip to the same settings.
    assert "pretrained_model_name: google/gemma-3-1b-pt" in serialize(recipe)
    packed = ZlibJSONSerializer().serialize(recipe)
    assert recipe_settings(ZlibJSONSerializer().deserialize(packed)) == settings
    with pytest.raises(MorphcptError, match=r"data prefix data/processed/.*/all: missing"):
        check_recipe(recipe, replace(plan), require_data=True)


def test_an_unknown_recipe_names_the_recipes_nemo_has() -> None:
    experiment = load_experiment("seapile-tl-cpt")
    plan = replace(plan_for_run(experiment, "patok"), recipe="gemma3_1bb")
    with pytest.raises(MorphcptError, match=r"training.recipe: 'gemma3_1bb' is not a NeMo pretrain recipe") as info:
        build_recipe(experiment, plan)
    known = str(info.value).split("this NeMo has: ")[1].split(", ")
    assert "gemma3_1b" in known and "llama32_1b" in known


def test_dry_run_builds_all_three_recipes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "morphcpt", "train", "-e", "seapile-tl-cpt", "--dry-run"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    print(result.stdout)  # the table, kept in the CI log
    for run in ("baseline", "stochastok", "patok"):
        assert f"{run}: NeMo recipe built and checked; serialized to checkpoints/{run}/recipe.yaml" in result.stdout


def test_pretraining_datamodule_over_a_real_indexed_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    build_corpus(tmp_path / "corpus.jsonl", documents=800, seed=3, language="tl")
    train_bytelevel_tokenizer(tmp_path / "corpus.jsonl", tmp_path / "tokenizer.json", vocab_size=1500)
    (tmp_path / "tok").mkdir()
    save_tokenizer(str(tmp_path / "tokenizer.json"), tmp_path / "tok")
    source = (REPO / "configs/experiments/seapile-tl-cpt.yaml").read_text()
    source = source.replace("corpus: data/corpora/seapile_tl.jsonl", "corpus: corpus.jsonl")
    source = source.replace("tokenizer: google/gemma-3-1b-pt", "tokenizer: tok")
    source = source.replace("num_chunks: 20", "num_chunks: 2")
    (tmp_path / "experiment.yaml").write_text(source)
    experiment = load_experiment("experiment.yaml")
    split_corpus(Path(experiment.data.corpus), Path(experiment.data.chunks_dir), 2)
    for chunk in (1, 2):
        preprocess_chunk(experiment, "patok", chunk)
    merge_variant(experiment, "patok")
    plan = replace(
        plan_for_run(experiment, "patok"),
        seq_length=64,
        global_batch_size=8,
        micro_batch_size=2,
        gpus_per_node=4,
        max_steps=10,
        val_interval=5,
    )
    recipe = build_recipe(experiment, plan)
    settings = check_recipe(recipe, plan, require_data=True)
    assert settings["data_paths"] == [str(merged_prefix(experiment, "patok"))]
    datamodule = build_datamodule(recipe, plan)
    assert len(datamodule._train_ds) >= plan.max_steps * plan.global_batch_size
    sample = datamodule._train_ds[0]
    assert len(sample["tokens"]) == 64
