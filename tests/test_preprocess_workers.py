"""`morphcpt preprocess --workers N`: a chunk's batches are tokenized and edited by N processes, and the
chunk's .bin, .idx, rejects and marker are the same bytes for any N; the task logs its progress (documents,
tokens, MB/s, ETA) and reports it to `morphcpt status`. On a real corpus and tokenizer built here, written
with megatron-core."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from morphcpt.config import load_experiment
from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer
from morphcpt.data.preprocess import ALLOCATED_CPUS_VARIABLES, chunk_prefix, default_workers, preprocess_chunk
from morphcpt.data.split import split_corpus
from morphcpt.data.tokenizer import load_tokenizer
from morphcpt.errors import MorphcptError
from morphcpt.progress import JOB_NAME_VARIABLE, PROGRESS_DIR_VARIABLE, progress_file, read_progress

BAD_LINES = {3: b"{not json", 40: b'{"text": "sira \\ud800 dito"}', 41: b"", 77: b'{"text": 42}'}
PROGRESS_LINE = re.compile(
    r"^\[preprocess\] (?P<variant>\w+) chunk 1: (?P<done>[\d,]+)/(?P<total>[\d,]+) documents(?: \([\d,]+ rejected\))?, "
    r"(?P<tokens>[\d,]+) tokens, [\d.]+ MB/s, (?P<when>ETA \d+:\d\d:\d\d|in \d+:\d\d:\d\d)$"
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A split one-chunk experiment (chunk lines are corpus lines) with bad records, cut into many small
    batches: far more than there are workers, so that results come back out of order and the window fills."""
    root = tmp_path_factory.mktemp("workers")
    build_corpus(root / "clean.jsonl", documents=1200, seed=5, language="tl")
    train_bytelevel_tokenizer(root / "clean.jsonl", root / "tokenizer.json", vocab_size=3000)
    lines = (root / "clean.jsonl").read_bytes().splitlines()
    for number, bad in sorted(BAD_LINES.items()):
        lines.insert(number - 1, bad)
    (root / "corpus.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    source = (REPO / "configs/experiments/demo.yaml").read_text()
    source = source.replace("corpus: data/corpora/demo_tl.jsonl", "corpus: corpus.jsonl")
    source = source.replace("tokenizer: data/demo/tokenizer/tokenizer.json", "tokenizer: tokenizer.json")
    source = source.replace("  num_chunks: 4\n", "  num_chunks: 1\n  batch_chars: 4000\n")
    (root / "experiment.yaml").write_text(source)
    exp = load_experiment(root / "experiment.yaml")
    split_corpus(root / "corpus.jsonl", root / exp.data.chunks_dir, 1)
    return root


def morphcpt(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    for name in (JOB_NAME_VARIABLE, PROGRESS_DIR_VARIABLE):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-m", "morphcpt", *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done


def test_one_and_four_workers_write_the_same_bytes_and_log_progress(workspace: Path, tmp_path: Path) -> None:
    outputs: dict[int, dict[str, bytes]] = {}
    logs: dict[tuple[int, str], list[str]] = {}
    for workers in (1, 4):
        work = tmp_path / f"workers_{workers}"
        shutil.copytree(workspace, work, ignore=shutil.ignore_patterns("processed", ".cache"))
        for variant in ("stochastok", "patok"):
            args = ["preprocess", "-e", "experiment.yaml", "--variant", variant, "--chunk", "1"]
            done = morphcpt(work, *args, "--workers", str(workers), "--progress-interval", "0")
            logs[workers, variant] = done.stderr.splitlines()
        processed = work / "data/demo/processed"
        outputs[workers] = {str(p.relative_to(processed)): p.read_bytes() for p in processed.rglob("*") if p.is_file()}
    # Every file, the markers included: the number of workers is not a parameter of the chunk.
    assert sorted(outputs[1]) == sorted(outputs[4])
    assert len(outputs[1]) == 8  # .bin, .idx, .rejects.jsonl, .done.json of each variant
    for name, data in outputs[1].items():
        assert outputs[4][name] == data, f"{name} differs between 1 and 4 workers"
    rejects = [json.loads(line) for line in outputs[4]["patok/chunk_0001.rejects.jsonl"].decode().splitlines()]
    assert [(r["line"], r["reason"], r["source"]) for r in rejects] == [
        (3, "invalid_json", "corpus.jsonl:3"),
        (40, "unencodable_text", "corpus.jsonl:40"),
        (41, "blank_line", "corpus.jsonl:41"),
        (77, "text_not_a_string", "corpus.jsonl:77"),
    ]
    marker = json.loads(outputs[4]["patok/chunk_0001.done.json"])
    assert "workers" not in marker["parameters"] and marker["rejected"] == 4
    assert marker["documents"] + marker["rejected"] == marker["lines"]
    # The edits made random draws: two variants whose streams would differ if a worker's draws did.
    assert marker["edits"]["expansions"] > 0 and marker["edits"]["boundary_splits"] > 0
    for (workers, variant), lines in logs.items():
        progress = [m for m in map(PROGRESS_LINE.match, lines) if m]
        assert len(progress) >= 5, f"{variant} with {workers} workers logged only:\n" + "\n".join(lines)
        assert all(m["variant"] == variant for m in progress)
        # The total is the split manifest's line count, known before the chunk is read.
        assert {int(m["total"].replace(",", "")) for m in progress} == {marker["lines"]}
        done = [int(m["done"].replace(",", "")) for m in progress]
        assert done == sorted(done) and done[-1] == marker["lines"]
        assert all(m["when"].startswith("ETA") for m in progress[:-1]) and progress[-1]["when"].startswith("in ")
        assert (
            int(progress[-1]["tokens"].replace(",", ""))
            == json.loads(outputs[workers][f"{variant}/chunk_0001.done.json"])["tokens"]
        )


def test_workers_keep_documents_whole_and_in_order(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    monkeypatch.chdir(workspace)
    exp = load_experiment("experiment.yaml")
    exp = exp.model_copy(update={"data": exp.data.model_copy(update={"processed_dir": str(tmp_path / "p")})})
    result = preprocess_chunk(exp, "stochastok", 1, workers=3)
    tokenizer = load_tokenizer(exp.data.tokenizer)
    dataset = IndexedDataset(str(chunk_prefix(exp, "stochastok", 1)))
    texts = [json.loads(line)["text"] for line in (workspace / "clean.jsonl").read_text().splitlines()]
    assert len(dataset) == result["documents"] == len(texts)
    assert [tokenizer.decode(np.asarray(dataset[i])[:-1]) for i in range(len(dataset))] == texts


def test_the_chunk_reports_its_documents_to_status(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    monkeypatch.setenv(JOB_NAME_VARIABLE, "preprocess_data_patok")
    monkeypatch.setenv(PROGRESS_DIR_VARIABLE, str(tmp_path / "progress"))
    exp = load_experiment("experiment.yaml")
    exp = exp.model_copy(update={"data": exp.data.model_copy(update={"processed_dir": str(tmp_path / "p")})})
    result = preprocess_chunk(exp, "patok", 1, workers=2)
    report = read_progress(progress_file(tmp_path / "progress", "preprocess_data_patok", 1))
    assert report is not None and report.unit == "documents"
    assert report.done == report.total == result["lines"]


def test_strict_stops_at_the_first_bad_record_with_workers(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(workspace)
    exp = load_experiment("experiment.yaml")
    exp = exp.model_copy(update={"data": exp.data.model_copy(update={"processed_dir": str(tmp_path / "p")})})
    with pytest.raises(MorphcptError, match=r"chunk_0001\.jsonl:3 \(corpus\.jsonl:\d+\): invalid_json"):
        preprocess_chunk(exp, "patok", 1, strict=True, workers=2)
    assert [p.name for p in (tmp_path / "p/patok").iterdir()] == []


def test_default_workers_are_the_cpus_the_scheduler_gave_the_job(monkeypatch: pytest.MonkeyPatch) -> None:
    usable = len(os.sched_getaffinity(0))
    for name in ALLOCATED_CPUS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert default_workers() == usable
    monkeypatch.setenv("NCPUS", "1")  # PBS Pro's ncpus of the job's chunk
    assert default_workers() == 1
    monkeypatch.delenv("NCPUS")
    # More than this process may run on (a node shared without cpusets): the CPUs it can use.
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", str(usable + 30))
    assert default_workers() == usable
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "")
    monkeypatch.setenv("NSLOTS", "1")
    assert default_workers() == 1
    # The profile's ncpus for the stage, as the job prologue exports it, comes first (the local profile's
    # tasks share one machine and no scheduler states a count there).
    monkeypatch.setenv("NSLOTS", str(usable))
    monkeypatch.setenv("MORPHCPT_NCPUS", "1")
    assert default_workers() == 1


def test_a_killed_worker_fails_the_chunk_with_what_to_do(
    workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kernel's OOM killer, played by SIGKILL: the task says what to change and leaves no marker."""
    from test_data_path import worker_processes

    monkeypatch.chdir(workspace)
    exp = load_experiment("experiment.yaml")
    exp = exp.model_copy(update={"data": exp.data.model_copy(update={"processed_dir": str(tmp_path / "p")})})
    killed: list[int] = []

    def kill_a_worker() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for pid in worker_processes(os.getpid())[:1]:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    try:
        with pytest.raises(
            MorphcptError, match=r"stopped abruptly .* more mem in the cluster profile, or use fewer --workers"
        ):
            preprocess_chunk(exp, "patok", 1, workers=2)
    finally:
        killer.join()
    assert killed and [p.name for p in (tmp_path / "p/patok").iterdir()] == []
