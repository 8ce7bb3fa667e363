"""The tiny CPU backend on a real small Filipino corpus: loss falls, kill-and-resume equals an uninterrupted
run, the time budget stops with a checkpoint and exit status 3, export round-trips, bad input fails early.

Not covered here: the NeMo backend's training itself (needs GPUs); its recipe is built and checked in
tests/test_nemo_recipe.py when NeMo is installed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from morphcpt.config import load_experiment
from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer
from morphcpt.data.preprocess import merge_variant, preprocess_chunk
from morphcpt.data.split import split_corpus
from morphcpt.training.plan import plan_for_run, plan_from_seed_args, seed_argument_parser

TRAINING = """training:
  backend: cpu
  pretrained: none
  seq_length: 64
  global_batch_size: 8
  micro_batch_size: 4
  lr: 3.0e-3
  min_lr: 3.0e-4
  warmup_steps: 10
  max_steps: {steps}
  checkpoint_interval: 20
  val_interval: 50
  log_interval: 10
  gpus_per_node: 1
  checkpoints_dir: {checkpoints}
  models_dir: models
  time_budget_margin_seconds: 0
"""


def _experiment_text(steps: int, checkpoints: str) -> str:
    source = (REPO / "configs/experiments/demo.yaml").read_text()
    source = source.replace("corpus: data/corpora/demo_tl.jsonl", "corpus: corpus.jsonl")
    source = source.replace("tokenizer: data/demo/tokenizer/tokenizer.json", "tokenizer: tokenizer.json")
    head, _, tail = source.partition("training:")
    tail = tail[tail.index("evaluation:") :]
    return head + TRAINING.format(steps=steps, checkpoints=checkpoints) + tail


@pytest.fixture(scope="module")
def trained_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("train")
    build_corpus(root / "corpus.jsonl", documents=1500, seed=5, language="tl")
    train_bytelevel_tokenizer(root / "corpus.jsonl", root / "tokenizer.json", vocab_size=2000)
    (root / "experiment.yaml").write_text(_experiment_text(200, "ck"))
    cwd = Path.cwd()
    os.chdir(root)
    try:
        exp = load_experiment("experiment.yaml")
        split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), exp.data.num_chunks)
        for chunk in range(1, exp.data.num_chunks + 1):
            preprocess_chunk(exp, "vanilla", chunk)
        merge_variant(exp, "vanilla")
    finally:
        os.chdir(cwd)
    return root


def morphcpt(root: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "morphcpt", *args], cwd=root, capture_output=True, text=True, check=check
    )


def metrics(root: Path, checkpoints: str) -> list[dict[str, float]]:
    path = root / checkpoints / "baseline" / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def with_config(root: Path, name: str, steps: int, checkpoints: str) -> str:
    (root / name).write_text(_experiment_text(steps, checkpoints))
    return name


def test_loss_falls_and_interrupted_runs_match_the_uninterrupted_one(trained_data: Path) -> None:
    root = trained_data
    done = morphcpt(root, "train", "-e", "experiment.yaml", "--run", "baseline")
    assert done.returncode == 0, done.stderr
    straight = metrics(root, "ck")
    assert straight[-1]["step"] == 200
    assert straight[-1]["loss"] < straight[0]["loss"] - 1.0, "loss did not fall over 200 steps"
    assert json.loads((root / "ck/baseline/done.json").read_text())["step"] == 200
    finished = {p: p.read_bytes() for p in (root / "ck/baseline").rglob("*") if p.is_file()}
    rerun = morphcpt(root, "train", "-e", "experiment.yaml", "--run", "baseline")
    assert rerun.returncode == 0 and "step 200," in rerun.stdout
    assert finished == {p: p.read_bytes() for p in (root / "ck/baseline").rglob("*") if p.is_file()}

    # SIGKILL once the step-60 checkpoint exists, then resume: the same losses at the same steps.
    config = with_config(root, "killed.yaml", 200, "ck-killed")
    process = subprocess.Popen(
        [sys.executable, "-m", "morphcpt", "train", "-e", config, "--run", "baseline"],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pointer = root / "ck-killed/baseline/latest"
    deadline = time.time() + 300
    while time.time() < deadline and not (pointer.exists() and pointer.read_text().strip() >= "step_000060"):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (root / "ck-killed/baseline/done.json").exists()
    resumed = morphcpt(root, "train", "-e", config, "--run", "baseline")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from step" in resumed.stdout
    again = metrics(root, "ck-killed")
    assert [m["step"] for m in again] == [m["step"] for m in straight], "metrics lines were lost or repeated"
    assert np.allclose([m["loss"] for m in again], [m["loss"] for m in straight], rtol=0, atol=1e-5)


def test_time_budget_stops_with_a_checkpoint_and_status_3(trained_data: Path) -> None:
    root = trained_data
    config = with_config(root, "budget.yaml", 2000, "ck-budget")
    stopped = morphcpt(root, "train", "-e", config, "--run", "baseline", "--time-budget", "12")
    assert stopped.returncode == 3, stopped.stderr
    latest = (root / "ck-budget/baseline/latest").read_text().strip()
    step = int(latest.removeprefix("step_"))
    assert 0 < step < 2000 and f"step {step}," in stopped.stdout
    assert not (root / "ck-budget/baseline/done.json").exists()
    # The next job resumes there (and stops again at its own budget).
    again = morphcpt(root, "train", "-e", config, "--run", "baseline", "--time-budget", "12")
    assert again.returncode == 3 and f"resumed from step {step}" in again.stdout


def test_export_round_trip_gives_the_same_logits(trained_data: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Gemma3ForCausalLM

    root = trained_data
    config = with_config(root, "short.yaml", 20, "ck-short")
    morphcpt(root, "train", "-e", config, "--run", "baseline", check=True)
    exported = morphcpt(root, "export", "-e", config, "--run", "baseline")
    assert exported.returncode == 0, exported.stderr
    checkpoint = Gemma3ForCausalLM.from_pretrained(root / "ck-short/baseline/step_000020").eval()
    model = AutoModelForCausalLM.from_pretrained(root / "models/baseline").eval()
    tokenizer = AutoTokenizer.from_pretrained(root / "models/baseline")
    ids = tokenizer("Magandang umaga sa inyong lahat", return_tensors="pt").input_ids
    from morphcpt.data.tokenizer import load_tokenizer

    assert (
        ids[0].tolist()
        == load_tokenizer(str(root / "tokenizer.json")).encode_batch(["Magandang umaga sa inyong lahat"])[0]
    )
    with torch.no_grad():
        assert torch.equal(checkpoint(ids).logits, model(ids).logits)
    assert "already exported" in morphcpt(root, "export", "-e", config, "--run", "baseline").stdout


def test_bad_input_fails_before_any_compute(trained_data: Path, tmp_path: Path) -> None:
    root = trained_data
    # A checkpoint directory written with other settings is kept under another name; the run starts over.
    config = with_config(root, "changed.yaml", 20, "ck-short")
    text = (root / config).read_text().replace("lr: 3.0e-3", "lr: 1.0e-3")
    (root / config).write_text(text)
    result = morphcpt(root, "train", "-e", config, "--run", "baseline")
    assert result.returncode == 0 and "was made with other settings (lr)" in result.stdout
    kept = [p for p in (root / "ck-short").iterdir() if p.name.startswith("baseline.superseded-")]
    assert len(kept) == 1 and '"lr": 0.003' in (kept[0] / "run_config.json").read_text()
    assert '"lr": 0.001' in (root / "ck-short/baseline/run_config.json").read_text()
    # A run whose data was never preprocessed.
    result = morphcpt(root, "train", "-e", "experiment.yaml", "--run", "patok")
    assert result.returncode == 2 and "data/demo/processed/patok/all.bin" in result.stderr
    # A tokenizer whose vocabulary the data does not fit.
    train_bytelevel_tokenizer(root / "corpus.jsonl", root / "small.json", vocab_size=300)
    small = (root / "experiment.yaml").read_text().replace("tokenizer: tokenizer.json", "tokenizer: small.json")
    (root / "small.yaml").write_text(small)
    result = morphcpt(root, "train", "-e", "small.yaml", "--run", "baseline")
    assert result.returncode == 2 and "different tokenizer" in result.stderr


def test_too_few_documents_is_an_error_not_a_hang(tmp_path: Path) -> None:
    from morphcpt.errors import MorphcptError
    from morphcpt.training.data import DatasetFacts, check_counts

    with pytest.raises(MorphcptError, match="20 documents leave the validation split"):
        check_counts(DatasetFacts(tmp_path / "p", documents=20, tokens=10_000, max_id=5), seq_length=64)
    with pytest.raises(MorphcptError, match="fewer than one sample"):
        check_counts(DatasetFacts(tmp_path / "p", documents=500, tokens=60, max_id=5), seq_length=64)


def test_seed_command_line_maps_to_the_experiment_run() -> None:
    exp = load_experiment("seapile-tl-cpt")
    args = seed_argument_parser().parse_args(
        [
            "--data-path",
            "data/processed/patok/all",
            "--checkpoint-dir",
            "checkpoints/patok",
            "--wandb-name",
            "gemma3-1b-patok",
            "--max-steps",
            "10000",
        ]
    )
    assert plan_from_seed_args(exp, args) == plan_for_run(exp, "patok")
    plan = plan_for_run(exp, "patok")
    assert (plan.seq_length, plan.global_batch_size, plan.micro_batch_size) == (2048, 256, 2)
    assert (plan.data_parallel, plan.grad_accumulation) == (8, 16)
    assert (plan.lr, plan.min_lr, plan.warmup_steps, plan.weight_decay, plan.clip_grad) == (1e-4, 1e-5, 500, 0.1, 1.0)
    assert (plan.max_steps, plan.checkpoint_interval, plan.val_interval, plan.log_interval) == (10000, 1000, 500, 10)
    ambiguous = seed_argument_parser().parse_args(["--data-path", "elsewhere/all"])
    with pytest.raises(Exception, match="cannot tell which run"):
        plan_from_seed_args(exp, ambiguous)


def test_dry_run_prints_the_plan_of_every_run() -> None:
    result = morphcpt(REPO, "train", "-e", "seapile-tl-cpt", "--dry-run")
    assert result.returncode == 0, result.stderr
    for text in ("baseline", "stochastok", "patok", "2048 / 256 / 2", "AdamW lr 0.0001 cosine -> 1e-05, warmup 500"):
        assert text in result.stdout
