"""The seed plan's own command lines, run as the plan writes them, make the same artifacts (byte for byte) as
the `morphcpt` commands they map to: download_seapile.py --output --language fil, split_jsonl.py --input
--output-dir --num-chunks, run_evaluation.py --models <checkpoint directory>; the plan's W&B names in
seapile-tl-cpt.yaml; and .env.example in the form the job scripts and the container wrapper read.

Not covered here: the hub's HTTP transfer (no network: the hub code runs offline over shards already in its
download folder, as an interrupted download leaves them) and NeMo's own checkpoint conversion (NeMo needs
its container; here: detection, the error naming the container command, and the converted folder's use).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from morphcpt.config import load_experiment
from morphcpt.data.markers import write_marker
from morphcpt.errors import ConfigError
from morphcpt.secrets import passes_into_container, secret_names
from morphcpt.training.export import conversion_parameters, converted_dir, find_checkpoint
from morphcpt.training.plan import plan_for_run, plan_from_seed_args, seed_argument_parser

SEAPILE = REPO / "configs/experiments/seapile-tl-cpt.yaml"
PLAN_CORPUS = "data/corpora/seapile-v2-filipino.jsonl"
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


def run(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def morphcpt(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(cwd, "-m", "morphcpt", *args, env=env)


def tree(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def seapile_copy(path: Path, **data: str) -> Path:
    """The seed experiment with some `data:` values set (what the plan's flags stand for)."""
    text = SEAPILE.read_text(encoding="utf-8")
    defaults = {"corpus": "data/corpora/seapile_tl.jsonl", "chunks_dir": "data/chunks", "num_chunks": "20"}
    for key, value in data.items():
        assert f"  {key}: {defaults[key]}\n" in text
        text = text.replace(f"  {key}: {defaults[key]}\n", f"  {key}: {value}\n")
    path.write_text(text, encoding="utf-8")
    return path


def test_download_seapile_with_the_plans_flags_writes_what_morphcpt_download_writes(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # Shards an earlier, interrupted download left in the hub download folder; the hub itself is out of reach.
    raw = tmp_path / "data/corpora/raw/tl"
    raw.mkdir(parents=True)
    pq.write_table(pa.table({"text": ["Kumain ka na?", "Magandang umaga po"]}), raw / "part-0.parquet")
    pq.write_table(pa.table({"text": ["Salamat sa Diyos"]}), raw / "part-1.parquet")
    offline = {"HF_HUB_OFFLINE": "1"}
    script = str(REPO / "scripts/download_seapile.py")
    plan = run(tmp_path, script, "--output", PLAN_CORPUS, "--language", "fil", env=offline)
    assert plan.returncode == 0, plan.stderr
    assert f"download: done: 3 records in {PLAN_CORPUS}" in plan.stdout
    # The experiment's split stage reads data.corpus: the note says how to point it at this file.
    assert "set data.corpus: data/corpora/seapile-v2-filipino.jsonl" in plan.stderr
    written = {name: (tmp_path / name).read_bytes() for name in (PLAN_CORPUS, PLAN_CORPUS + ".done.json")}
    rows = [json.loads(line) for line in written[PLAN_CORPUS].decode().splitlines()]
    assert rows == [{"text": "Kumain ka na?"}, {"text": "Magandang umaga po"}, {"text": "Salamat sa Diyos"}]
    # `tl`, the subset's own name, is the same download: already done.
    again = run(tmp_path, script, "--output", PLAN_CORPUS, "--language", "tl", env=offline)
    assert again.returncode == 0 and "download: already done: 3 records" in again.stdout, again.stderr

    for name in written:
        (tmp_path / name).unlink()
    experiment = seapile_copy(tmp_path / "plan.yaml", corpus=PLAN_CORPUS)
    mapped = morphcpt(tmp_path, "download", "-e", str(experiment), env=offline)
    assert mapped.returncode == 0, mapped.stderr
    assert {name: (tmp_path / name).read_bytes() for name in written} == written
    assert "note:" not in mapped.stderr


def test_split_jsonl_with_the_plans_flags_writes_what_morphcpt_split_writes(tmp_path: Path) -> None:
    corpus = tmp_path / PLAN_CORPUS
    corpus.parent.mkdir(parents=True)
    lines = [json.dumps({"text": "Magandang umaga " * (i % 17 + 1) + str(i)}, ensure_ascii=False) for i in range(300)]
    lines[7] = '{"text": "a malformed line is copied verbatim"'  # preprocessing counts it, the split keeps it
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    script = str(REPO / "training/nemo/data/split_jsonl.py")
    plan = run(tmp_path, script, "--input", PLAN_CORPUS, "--output-dir", "chunks-plan", "--num-chunks", "4")
    assert plan.returncode == 0, plan.stderr
    assert "split 300 lines into 4 chunks in chunks-plan" in plan.stdout
    assert "set data.num_chunks: 4" in plan.stderr  # the seed experiment's preprocess reads 20 chunks

    experiment = seapile_copy(tmp_path / "plan.yaml", corpus=PLAN_CORPUS, chunks_dir="chunks-morphcpt", num_chunks="4")
    mapped = morphcpt(tmp_path, "split", "-e", str(experiment))
    assert mapped.returncode == 0, mapped.stderr
    produced = tree(tmp_path / "chunks-plan")
    assert {name for name in produced if name.endswith(".jsonl")} == {f"chunk_000{i}.jsonl" for i in range(1, 5)}
    assert "manifest.json" in produced and "manifest.json.done.json" in produced
    assert produced == tree(tmp_path / "chunks-morphcpt")

    # The plan's own count, 20, is the experiment's: no note.
    twenty = run(tmp_path, script, "--input", PLAN_CORPUS, "--output-dir", "data/chunks", "--num-chunks", "20")
    assert twenty.returncode == 0 and "into 20 chunks" in twenty.stdout and "note:" not in twenty.stderr


def test_seed_experiment_uses_the_plans_wandb_project_and_run_names() -> None:
    exp = load_experiment("seapile-tl-cpt")
    names = {run: (plan_for_run(exp, run).wandb_project, plan_for_run(exp, run).wandb_name) for run in exp.runs}
    assert names == {
        "baseline": ("gemma3-seapile-cpt", "gemma3-1b-baseline"),
        "stochastok": ("gemma3-seapile-cpt", "gemma3-1b-stochastok"),
        "patok": ("gemma3-seapile-cpt", "gemma3-1b-patok"),
    }
    # The seed's run_cpt.py command line with the plan's W&B name is the experiment's run, and the name
    # alone tells which run it is.
    seed = ["--data-path", "data/processed/patok/all", "--checkpoint-dir", "checkpoints/patok"]
    args = seed_argument_parser().parse_args([*seed, "--wandb-name", "gemma3-1b-patok", "--max-steps", "10000"])
    assert plan_from_seed_args(exp, args) == plan_for_run(exp, "patok")
    by_name = seed_argument_parser().parse_args(["--wandb-name", "gemma3-1b-stochastok"])
    assert plan_from_seed_args(exp, by_name).run == "stochastok"
    # Experiments that do not set a name keep <experiment>-<run>.
    assert plan_for_run(load_experiment("demo"), "patok").wandb_name == "demo-patok"
    dry_run = morphcpt(REPO, "train", "-e", "seapile-tl-cpt", "--dry-run")
    assert dry_run.returncode == 0, dry_run.stderr
    assert "gemma3-seapile-cpt / gemma3-1b-baseline" in dry_run.stdout


@pytest.mark.parametrize(
    ("template", "message"),
    [("gemma3-{rn}", r"unknown placeholder \{rn\}"), ("gemma3-1b", r"has no \{run\}"), ("x-{run", "not a name")],
)
def test_a_bad_wandb_run_name_is_named_by_file_line_and_key(tmp_path: Path, template: str, message: str) -> None:
    text = SEAPILE.read_text(encoding="utf-8").replace('"gemma3-1b-{run}"', json.dumps(template))
    (tmp_path / "e.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_experiment(tmp_path / "e.yaml")
    assert "e.yaml:" in str(info.value) and "training.wandb_run_name" in str(info.value)


def test_env_example_lists_what_jobs_read_and_the_wrapper_loads_it(tmp_path: Path) -> None:
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    # Set lines and commented-out ones (`# WANDB_ENTITY=my-team`): the names a user may fill in.
    assignments = [m.groups() for line in example.splitlines() if (m := ASSIGNMENT.match(line))]
    names = [name for name, _ in assignments]
    assert {"HF_TOKEN", "WANDB_API_KEY"} <= set(names)
    # Every name is one the job scripts and the container wrapper read; no secret ships with a value.
    assert [name for name in names if not passes_into_container(name)] == []
    assert [name for name, value in assignments if name in secret_names() and value] == []

    (tmp_path / ".env").write_text(example.replace("HF_TOKEN=\n", "HF_TOKEN=hf_from_dotenv\n"), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in {"HF_TOKEN", "WANDB_API_KEY"}}
    env["MORPHCPT_WORKDIR"] = str(tmp_path)
    shown = subprocess.run(
        [
            str(REPO / "containers/run_in_enroot.sh"),
            "--no-container",
            "--",
            sys.executable,
            "-c",
            "import os; print(repr(os.environ.get('HF_TOKEN')), repr(os.environ.get('WANDB_API_KEY')))",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert shown.returncode == 0, shown.stderr
    # An empty value is exported empty: training then logs offline, as without a key.
    assert shown.stdout.split() == ["'hf_from_dotenv'", "''"]


# ---------------------------------------------------------------- run_evaluation.py given checkpoints


def nemo_checkpoint(path: Path) -> Path:
    """The layout of a NeMo 2 checkpoint (its two parts; their contents only NeMo reads)."""
    (path / "context").mkdir(parents=True)
    (path / "weights").mkdir()
    (path / "weights" / "metadata.json").write_text("{}")
    return path


def test_nemo_checkpoints_are_recognised_and_the_latest_is_taken(tmp_path: Path) -> None:
    run_dir = tmp_path / "gemma3-1b-baseline"
    checkpoints = run_dir / "gemma3-1b-baseline" / "checkpoints"
    for name in ("model--reduced_train_loss=2.10-epoch=0-step=499", "model--reduced_train_loss=1.90-epoch=0-step=999"):
        nemo_checkpoint(checkpoints / name)
    last = nemo_checkpoint(checkpoints / "model--reduced_train_loss=1.90-epoch=0-step=999-last")
    assert find_checkpoint(run_dir) == ("nemo", last)
    assert find_checkpoint(checkpoints) == ("nemo", last)
    only = checkpoints / "model--reduced_train_loss=2.10-epoch=0-step=499"
    assert find_checkpoint(only) == ("nemo", only)
    assert converted_dir(run_dir) == tmp_path / "gemma3-1b-baseline.hf"
    # An interrupted save (weights without context), a Hugging Face folder and a hub id are not checkpoints.
    (tmp_path / "partial" / "weights").mkdir(parents=True)
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    assert [find_checkpoint(p) for p in (tmp_path / "partial", tmp_path / "hf", Path("google/gemma-3-1b-pt"))] == [
        None,
        None,
        None,
    ]


TRAINING = """training:
  backend: cpu
  pretrained: none
  seq_length: 64
  global_batch_size: 8
  micro_batch_size: 4
  lr: 3.0e-3
  min_lr: 3.0e-4
  warmup_steps: 5
  max_steps: 20
  checkpoint_interval: 10
  val_interval: 50
  log_interval: 10
  gpus_per_node: 1
  checkpoints_dir: ck
  models_dir: models
  time_budget_margin_seconds: 0
evaluation:
  benchmarks: [pacute, hierarchical]
  eval_mode: both
  base_model: null
  results_dir: results-export
  benchmarks_dir: bench
  items_per_suite: 5
"""


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny CPU run trained to its target (checkpoints in ck/baseline), exported by `morphcpt export` to
    models/baseline, and the benchmarks in bench/: all made here, nothing from the hub."""
    from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer
    from morphcpt.data.preprocess import merge_variant, preprocess_chunk
    from morphcpt.data.split import split_corpus
    from morphcpt.evaluation.generate import write_benchmarks

    root = tmp_path_factory.mktemp("cpu_run")
    build_corpus(root / "corpus.jsonl", documents=600, seed=5, language="tl")
    train_bytelevel_tokenizer(root / "corpus.jsonl", root / "tokenizer.json", vocab_size=1000)
    source = (REPO / "configs/experiments/demo.yaml").read_text(encoding="utf-8")
    source = source.replace("corpus: data/corpora/demo_tl.jsonl", "corpus: corpus.jsonl")
    source = source.replace("tokenizer: data/demo/tokenizer/tokenizer.json", "tokenizer: tokenizer.json")
    head, _, tail = source.partition("training:")
    (root / "e.yaml").write_text(head + TRAINING + tail[tail.index("stages:") :], encoding="utf-8")
    # The data steps in this process (their commands are tested elsewhere); training and export as commands.
    cwd = Path.cwd()
    os.chdir(root)
    try:
        exp = load_experiment("e.yaml")
        split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), exp.data.num_chunks)
        for chunk in range(1, exp.data.num_chunks + 1):
            preprocess_chunk(exp, "vanilla", chunk)
        merge_variant(exp, "vanilla")
        write_benchmarks(Path("bench"), ["pacute", "hierarchical"], 5, exp.seed, language="tl")
    finally:
        os.chdir(cwd)
    for args in (["train", "-e", "e.yaml", "--run", "baseline"], ["export", "-e", "e.yaml", "--run", "baseline"]):
        done = morphcpt(root, *args)
        assert done.returncode == 0, f"{args}: {done.stderr}"
    return root


def run_evaluation(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run(
        root,
        str(REPO / "scripts/run_evaluation.py"),
        *args,
        "--benchmarks",
        "pacute",
        "hierarchical",
        "--eval-mode",
        "both",
        "--benchmarks-dir",
        "bench",
    )


def test_run_evaluation_of_a_cpu_run_directory_equals_evaluating_its_export(cpu_run: Path) -> None:
    root = cpu_run
    exported = morphcpt(root, "evaluate", "-e", "e.yaml", "--models", "models/baseline")
    assert exported.returncode == 0, exported.stderr
    first = run_evaluation(root, "--models", "ck/baseline", "--tokenizer", "tokenizer.json", "--results-dir", "r")
    assert first.returncode == 0, first.stderr
    assert "converting cpu checkpoint ck/baseline/step_000020" in first.stdout
    # The conversion is the export stage's: the same model files as models/baseline (which has its marker outside).
    assert tree(root / "ck/baseline.hf") == tree(root / "models/baseline")
    # Scores are named after the directory given, and equal those of the exported model, byte for byte.
    assert tree(root / "r/baseline") == tree(root / "results-export/baseline")
    again = run_evaluation(root, "--models", "ck/baseline", "--tokenizer", "tokenizer.json", "--results-dir", "r2")
    assert again.returncode == 0 and "converting" not in again.stdout, again.stderr
    assert tree(root / "r2/baseline") == tree(root / "r/baseline")
    # The CPU trainer's checkpoints carry no tokenizer: without one the error says what to pass.
    missing = run_evaluation(root, "--models", "ck/baseline", "--results-dir", "r3")
    assert missing.returncode == 2 and "holds no tokenizer: pass --tokenizer" in missing.stderr
    assert not list((root / "ck").glob(".tmp-*"))


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("nemo") is not None, reason="NeMo is installed: it would convert"
)
def test_a_nemo_checkpoint_without_nemo_names_the_container_command(cpu_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "gemma3-1b-baseline"
    nemo_checkpoint(run_dir / "gemma3-1b-baseline" / "checkpoints" / "model--epoch=0-step=19-last")
    bench = str(cpu_run / "bench")
    args = ["--models", str(run_dir), "--benchmarks", "pacute", "hierarchical", "--eval-mode", "both"]
    result = run(REPO, "scripts/run_evaluation.py", *args, "--benchmarks-dir", bench, "--results-dir", str(tmp_path))
    assert result.returncode == 2
    assert "is a NeMo 2 checkpoint; converting it to a Hugging Face model needs NeMo" in result.stderr
    command = " ".join(["containers/run_in_enroot.sh python scripts/run_evaluation.py", *args])
    assert command in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gemma3-1b-baseline"]  # nothing converted or scored


def test_a_converted_nemo_checkpoint_is_evaluated_here_without_nemo(cpu_run: Path, tmp_path: Path) -> None:
    """What NeMo's exporter leaves in the container (a HF folder in <checkpoint>.hf with its marker): later runs
    on a machine without NeMo evaluate it. NeMo's conversion itself is stood in for by the exported CPU model."""
    run_dir = tmp_path / "gemma3-1b-baseline"
    checkpoint = nemo_checkpoint(run_dir / "gemma3-1b-baseline" / "checkpoints" / "model--epoch=0-step=19-last")
    cache = converted_dir(run_dir)
    shutil.copytree(cpu_run / "models/baseline", cache)
    write_marker(cache, [cache / "config.json"], conversion_parameters("nemo", checkpoint, cache, None))
    result = run_evaluation(cpu_run, "--models", str(run_dir), "--results-dir", str(tmp_path / "results"))
    assert result.returncode == 0, result.stderr
    assert tree(tmp_path / "results/gemma3-1b-baseline") == tree(cpu_run / "results-export/baseline")
