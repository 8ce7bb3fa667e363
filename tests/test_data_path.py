"""The data path on a real small Filipino corpus built offline and a tokenizer trained here:
split -> preprocess (vanilla, stochastok, patok) -> merge, read back with megatron-core."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO
from morphcpt.config import PatokVariant, load_experiment
from morphcpt.data.markers import file_sha256
from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer
from morphcpt.data.preprocess import chunk_prefix, merge_variant, merged_prefix, preprocess_chunk
from morphcpt.data.processors import Patok, Stochastok, build_split_table
from morphcpt.data.split import split_corpus
from morphcpt.data.tokenizer import load_tokenizer
from morphcpt.errors import MorphcptError
from morphcpt.languages import get_language
from morphcpt.languages.tl.corpus import frequent_words

VARIANTS = ("vanilla", "stochastok", "patok")
TL = get_language("tl")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workdir with corpus, tokenizer and a 4-chunk experiment (paths relative to it, like a real run)."""
    root = tmp_path_factory.mktemp("data")
    build_corpus(root / "corpus.jsonl", documents=1200, seed=7, language=TL)
    train_bytelevel_tokenizer(root / "corpus.jsonl", root / "tokenizer.json", vocab_size=3000)
    source = (REPO / "configs/experiments/demo.yaml").read_text()
    source = source.replace("corpus: data/corpora/demo_tl.jsonl", "corpus: corpus.jsonl")
    source = source.replace("tokenizer: data/demo/tokenizer/tokenizer.json", "tokenizer: tokenizer.json")
    (root / "experiment.yaml").write_text(source)
    return root


@pytest.fixture()
def in_workspace(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(workspace)
    return workspace


def texts_of(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_split_is_balanced_deterministic_and_complete(in_workspace: Path) -> None:
    exp = load_experiment("experiment.yaml")
    manifest = split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), 4)
    sizes = [c["bytes"] for c in manifest["chunks"]]
    longest_line = max(len(line) + 1 for line in (in_workspace / "corpus.jsonl").read_bytes().splitlines())
    assert max(sizes) - min(sizes) <= longest_line
    assert sum(c["lines"] for c in manifest["chunks"]) == manifest["lines"] == 1200
    chunk_lines = sorted(
        line
        for i in range(1, 5)
        for line in (in_workspace / exp.data.chunks_dir / f"chunk_{i:04d}.jsonl").read_text().splitlines()
    )
    assert chunk_lines == sorted((in_workspace / "corpus.jsonl").read_text().splitlines())
    again = in_workspace / "again"
    second = split_corpus(Path(exp.data.corpus), again, 4)
    assert [c["sha256"] for c in second["chunks"]] == [c["sha256"] for c in manifest["chunks"]]


def test_three_variants_differ_and_decode_to_the_documents(in_workspace: Path) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    exp = load_experiment("experiment.yaml")
    split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), 4)
    tokenizer = load_tokenizer(exp.data.tokenizer)
    streams = {}
    for variant in VARIANTS:
        for chunk in range(1, 5):
            result = preprocess_chunk(exp, variant, chunk)
            assert result["rejected"] == 0 and result["documents"] == result["lines"]
        merge_variant(exp, variant)
        dataset = IndexedDataset(str(merged_prefix(exp, variant)))
        assert len(dataset) == 1200
        docs = [np.asarray(dataset[i]) for i in range(len(dataset))]
        assert all(doc[-1] == tokenizer.eod_id for doc in docs)
        expected = [t for i in range(1, 5) for t in texts_of(Path(exp.data.chunks_dir) / f"chunk_{i:04d}.jsonl")]
        assert [tokenizer.decode(doc[:-1]) for doc in docs] == expected
        streams[variant] = np.concatenate(docs)
        for chunk in range(1, 5):
            marker = json.loads(chunk_prefix(exp, variant, chunk).with_name(f"chunk_{chunk:04d}.done.json").read_text())
            assert marker["edits"]["input_tokens"] > 0 and "realised_expansion_rate" in marker["edits"]
            # Every edited chunk names the definition of expand_prop beside the rate it realised.
            expansion = marker["expansion"]
            if variant == "vanilla":
                assert expansion is None
            else:
                assert expansion["definition"] == "attempts_per_document"
                assert expansion["realised_rate"] == marker["edits"]["realised_expansion_rate"] > 0
    assert len(streams["stochastok"]) > len(streams["vanilla"]) and len(streams["patok"]) > len(streams["vanilla"])
    assert not np.array_equal(streams["stochastok"], streams["patok"])
    rate = json.loads(chunk_prefix(exp, "stochastok", 2).with_name("chunk_0002.done.json").read_text())["edits"]
    assert 0.05 < rate["realised_expansion_rate"] <= 0.2


def test_gpt_dataset_builds_over_the_merged_data(in_workspace: Path) -> None:
    from morphcpt.training.data import build_gpt_datasets

    exp = load_experiment("experiment.yaml")
    split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), 4)
    for chunk in range(1, 5):
        preprocess_chunk(exp, "patok", chunk)
    merge_variant(exp, "patok")
    tokenizer = load_tokenizer(exp.data.tokenizer)
    train, valid = build_gpt_datasets(
        merged_prefix(exp, "patok"), 64, 1, (50, 5), tokenizer.eod_id, tokenizer.vocab_size, "test"
    )
    sample = train[0]
    assert sample["tokens"].shape[0] == 64 and len(train) >= 50 and valid is not None


def test_rerun_is_skipped_and_byte_identical(in_workspace: Path) -> None:
    exp = load_experiment("experiment.yaml")
    split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), 4)
    first = preprocess_chunk(exp, "stochastok", 3)
    prefix = chunk_prefix(exp, "stochastok", 3)
    digest = file_sha256(prefix.with_name(prefix.name + ".bin"))
    assert preprocess_chunk(exp, "stochastok", 3)["skipped"] is True
    prefix.with_name(prefix.name + ".done.json").unlink()
    redo = preprocess_chunk(exp, "stochastok", 3)
    assert redo["skipped"] is False and redo["tokens"] == first["tokens"]
    assert file_sha256(prefix.with_name(prefix.name + ".bin")) == digest


def worker_processes(parent: int) -> list[int]:
    """The pool's worker processes of `parent` (spawned: `spawn_main` on their command line)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in command:
            found.append(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """A process that exists and is not a zombie (an orphan's zombie waits for an init that may not reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killed_task_leaves_nothing_complete_and_rerun_is_identical(workspace: Path, tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    shutil.copy(workspace / "tokenizer.json", big / "tokenizer.json")
    build_corpus(big / "corpus.jsonl", documents=30000, seed=3, language=TL)
    # Small batches: the task writes in many steps, so the kill lands between two of them.
    source = (workspace / "experiment.yaml").read_text()
    (big / "experiment.yaml").write_text(source.replace("  num_chunks: 4\n", "  num_chunks: 4\n  batch_size: 200\n"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    run = [sys.executable, "-m", "morphcpt"]
    subprocess.run([*run, "split", "-e", "experiment.yaml"], cwd=big, check=True, env=env, capture_output=True)

    def preprocess_chunk_1(cwd: Path) -> None:
        subprocess.run(preprocess, cwd=cwd, check=True, env=env, capture_output=True)

    # Two worker processes: the kill lands on the task, not on them, and they must not outlive it.
    preprocess = [*run, "preprocess", "-e", "experiment.yaml", "--variant", "patok", "--chunk", "1", "--workers", "2"]
    proc = subprocess.Popen(preprocess, cwd=big, env=env)
    out_dir = big / "data/demo/processed/patok"
    deadline = time.monotonic() + 60
    # Killed once the first documents are on disk, so the .bin is half written.
    while time.monotonic() < deadline and not any(p.stat().st_size for p in out_dir.glob(".chunk_0001.tmp-*.bin")):
        time.sleep(0.01)
    workers = worker_processes(proc.pid)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the task finished before it could be killed"
    assert len(workers) == 2
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(running(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(running(pid) for pid in workers), "a worker outlived its killed task"
    assert not (out_dir / "chunk_0001.done.json").exists()
    assert not (out_dir / "chunk_0001.bin").exists() and not (out_dir / "chunk_0001.idx").exists()
    preprocess_chunk_1(big)
    killed_digest = file_sha256(out_dir / "chunk_0001.bin")
    clean = tmp_path / "clean"
    shutil.copytree(big, clean, ignore=shutil.ignore_patterns("processed"))
    preprocess_chunk_1(clean)
    assert file_sha256(clean / "data/demo/processed/patok/chunk_0001.bin") == killed_digest
    assert file_sha256(clean / "data/demo/processed/patok/chunk_0001.idx") == file_sha256(out_dir / "chunk_0001.idx")


def test_bad_records_are_counted_with_reasons(in_workspace: Path) -> None:
    exp = load_experiment("experiment.yaml")
    chunks = Path(exp.data.chunks_dir)
    split_corpus(Path(exp.data.corpus), chunks, 4)
    good = (chunks / "chunk_0002.jsonl").read_bytes().splitlines()[:5]
    bad = [
        b"{not json",
        b'{"txt": "walang text"}',
        b'{"text": 42}',
        b'{"text": "   "}',
        b'"just a string"',
        b'{"text": "sira \xff\xfe"}',
        b"",
        b'{"text": "' + b"a" * (9 * 1024 * 1024) + b'"}',
    ]
    (chunks / "chunk_0002.jsonl").write_bytes(b"\n".join([good[0], *bad, *good[1:]]) + b"\n")
    result = preprocess_chunk(exp, "vanilla", 2)
    assert result["lines"] == 13 and result["documents"] == 5 and result["rejected"] == 8
    assert result["rejects_by_reason"] == {
        "blank_line": 1,
        "empty_text": 1,
        "invalid_json": 1,
        "invalid_utf8": 1,
        "missing_text": 1,
        "not_an_object": 1,
        "text_not_a_string": 1,
        "too_long": 1,
    }
    rejects = [
        json.loads(line)
        for line in (chunk_prefix(exp, "vanilla", 2).with_name("chunk_0002.rejects.jsonl")).read_text().splitlines()
    ]
    assert [r["line"] for r in rejects] == list(range(2, 10))
    with pytest.raises(MorphcptError, match=r"chunk_0002\.jsonl:2 \(corpus\.jsonl:\d+\): invalid_json"):
        preprocess_chunk(exp, "stochastok", 2, strict=True)
    assert not chunk_prefix(exp, "stochastok", 2).with_name("chunk_0002.done.json").exists()


def test_clear_errors_before_any_output(in_workspace: Path, tmp_path: Path) -> None:
    exp = load_experiment("experiment.yaml")
    with pytest.raises(MorphcptError, match="chunk 9 is outside 1-4"):
        preprocess_chunk(exp, "vanilla", 9)
    broken = exp.model_copy(update={"data": exp.data.model_copy(update={"tokenizer": str(tmp_path / "nope.json")})})
    split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), 4)
    with pytest.raises(MorphcptError, match=r"nope\.json not found"):
        preprocess_chunk(broken, "vanilla", 1)
    missing = exp.model_copy(update={"data": exp.data.model_copy(update={"chunks_dir": str(tmp_path / "none")})})
    with pytest.raises(MorphcptError, match="run the split stage first"):
        preprocess_chunk(missing, "vanilla", 1)


def test_unreadable_input_is_named_and_writes_nothing(in_workspace: Path, tmp_path: Path) -> None:
    # Tests run as root, which reads any file whatever its mode: a directory where the chunk should be
    # is the unreadable input this machine can make.
    exp = load_experiment("experiment.yaml")
    chunks = tmp_path / "chunks"
    (chunks / "chunk_0001.jsonl").mkdir(parents=True)
    where = {"chunks_dir": str(chunks), "processed_dir": str(tmp_path / "processed")}
    moved = exp.model_copy(update={"data": exp.data.model_copy(update=where)})
    with pytest.raises(MorphcptError, match=r"cannot read .*chunk_0001\.jsonl: Is a directory"):
        preprocess_chunk(moved, "patok", 1)
    assert not (tmp_path / "processed").exists()


def test_full_disk_gives_a_clear_error_and_no_marker(in_workspace: Path, tmp_path: Path) -> None:
    """A real ENOSPC: the processed directory is a 32 KB tmpfs, smaller than one chunk's output."""
    disk = tmp_path / "small_disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        exp = load_experiment("experiment.yaml")
        split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), 4)
        full = exp.model_copy(update={"data": exp.data.model_copy(update={"processed_dir": str(disk)})})
        with pytest.raises(MorphcptError, match=r"cannot write .*chunk_0001: No space left on device"):
            preprocess_chunk(full, "patok", 1)
        assert sorted(p.name for p in (disk / "patok").iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=True)


_WORDS = frequent_words(400)[0] + ["nagluluto", "gaganda", "sumulat", "kinain", "pagsulatan", "um", "in", "an", "mag"]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(_WORDS) | st.text(max_size=6), min_size=1, max_size=40), st.integers(0, 2**32 - 1))
def test_processors_never_change_content(workspace: Path, words: list[str], seed: int) -> None:
    tokenizer = load_tokenizer(str(workspace / "tokenizer.json"))
    table = build_split_table(tokenizer)
    text = " ".join(words)
    ids = np.asarray(tokenizer.encode_batch([text])[0], dtype=np.int64)
    original = tokenizer.decode_bytes(ids)
    assert original == text.encode("utf-8")
    rng = np.random.default_rng(seed)
    for processor in (
        Stochastok(table, 0.5),
        Patok(table, tokenizer.token_bytes, PatokVariant(processor="patok", expand_prop=0.5), TL.segment),
        Patok(
            table,
            tokenizer.token_bytes,
            PatokVariant(processor="patok", contract_prop=1.0, affix_awareness=0.0),
            TL.segment,
        ),
    ):
        out, counts = processor(ids, rng)
        assert tokenizer.decode_bytes(out) == original
        assert counts.output_tokens == len(out)


def test_split_table_lookups_agree_with_the_vocabulary(workspace: Path) -> None:
    """The filtered pair merge and the vectorized cut lookup against plain dictionary lookups of bytes."""
    tokenizer = load_tokenizer(str(workspace / "tokenizer.json"))
    table = build_split_table(tokenizer)
    pieces = tokenizer.token_bytes
    first_id = {data: i for i, data in reversed(list(enumerate(pieces))) if data and i not in tokenizer.special_ids}
    rng = np.random.default_rng(5)
    rows = rng.integers(0, len(table.left), 3000)
    left = np.concatenate((table.left[rows], rng.integers(0, len(pieces), 20000)))
    right = np.concatenate((table.right[rows], rng.integers(0, len(pieces), 20000)))
    expected = []
    for a, b in zip(left.tolist(), right.tolist(), strict=True):
        joined = first_id.get(pieces[a] + pieces[b], -1)
        # A pair is merged only into a token it splits: both sides are the first id of their bytes.
        usable = first_id.get(pieces[a]) == a and first_id.get(pieces[b]) == b
        expected.append(joined if usable and a not in tokenizer.special_ids and b not in tokenizer.special_ids else -1)
    assert table.merge(left, right).tolist() == expected
    assert sum(e >= 0 for e in expected) >= 3000

    tokens = rng.integers(0, len(pieces), 20000)
    cuts = rng.integers(1, 8, 20000)
    found = table.split_row(tokens, cuts)
    for token, cut, row in zip(tokens.tolist(), cuts.tolist(), found.tolist(), strict=True):
        data = pieces[token]
        sides = (first_id.get(data[:cut]), first_id.get(data[cut:]))
        if row < 0:
            assert cut >= len(data) or None in sides or token in tokenizer.special_ids
        else:
            assert (int(table.left[row]), int(table.right[row])) == sides


def test_many_small_batches_keep_every_document_whole(in_workspace: Path) -> None:
    """A batch ends at batch_chars; with tiny batches the reader, the edits in the worker thread and the
    writer still keep documents whole and in order."""
    exp = load_experiment("experiment.yaml")
    exp = exp.model_copy(update={"data": exp.data.model_copy(update={"batch_chars": 500, "processed_dir": "small"})})
    split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), 4)
    tokenizer = load_tokenizer(exp.data.tokenizer)
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    expected = texts_of(Path(exp.data.chunks_dir) / "chunk_0003.jsonl")
    for variant in VARIANTS:
        result = preprocess_chunk(exp, variant, 3)
        assert result["parameters"]["batch_chars"] == 500
        dataset = IndexedDataset(str(chunk_prefix(exp, variant, 3)))
        assert [tokenizer.decode(np.asarray(dataset[i])[:-1]) for i in range(len(dataset))] == expected


def test_patok_terminates_on_a_document_made_only_of_affixes(workspace: Path) -> None:
    tokenizer = load_tokenizer(str(workspace / "tokenizer.json"))
    table = build_split_table(tokenizer)
    text = "mag nag um in an han " * 200 + "pinakanakikipag" * 50
    ids = np.asarray(tokenizer.encode_batch([text])[0], dtype=np.int64)
    patok = Patok(table, tokenizer.token_bytes, PatokVariant(processor="patok"), TL.segment)
    out, _ = patok(ids, np.random.default_rng(0))
    assert tokenizer.decode(out) == text


def test_download_converts_local_parquet_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    shards = tmp_path / "tl"
    shards.mkdir()
    pq.write_table(pa.table({"text": ["Kumain ka na?", "Magandang umaga"], "url": ["u1", "u2"]}), shards / "a.parquet")
    pq.write_table(pa.table({"text": ["Salamat po"], "url": ["u3"]}), shards / "b.parquet")
    source = (REPO / "configs/experiments/demo.yaml").read_text()
    source = source.replace(
        "source: {local_path: data/corpora/demo_source.jsonl}", f"source: {{local_path: {shards}, keep_fields: [url]}}"
    )
    (tmp_path / "e.yaml").write_text(source.replace("corpus: data/corpora/demo_tl.jsonl", "corpus: out/corpus.jsonl"))
    monkeypatch.chdir(tmp_path)
    from morphcpt.data.download import download_corpus

    exp = load_experiment("e.yaml")
    assert download_corpus(exp)["lines"] == 3
    rows = [json.loads(line) for line in (tmp_path / "out/corpus.jsonl").read_text().splitlines()]
    assert rows == [
        {"text": "Kumain ka na?", "url": "u1"},
        {"text": "Magandang umaga", "url": "u2"},
        {"text": "Salamat po", "url": "u3"},
    ]
    assert download_corpus(exp)["skipped"] is True


def test_hub_download_reuses_the_shards_already_on_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real hub path (huggingface_hub.snapshot_download) with the hub out of reach: shards fetched by an
    earlier, interrupted run are in the download folder, so the download resumes from them and converts.
    Not covered here: the HTTP transfer itself (no network on these machines)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = tmp_path / "raw"
    (raw / "tl").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["Kumain ka na?", None], "id": [1, 2]}), raw / "tl" / "part-0.parquet")
    pq.write_table(pa.table({"text": ["Salamat po"], "id": [3]}), raw / "tl" / "part-1.parquet")
    source = (REPO / "configs/experiments/demo.yaml").read_text()
    source = source.replace("source: {local_path: data/corpora/demo_source.jsonl}", "source: {keep_fields: [id]}")
    (tmp_path / "e.yaml").write_text(source.replace("corpus: data/corpora/demo_tl.jsonl", "corpus: corpus.jsonl"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    from morphcpt.data.download import download_corpus

    result = download_corpus(load_experiment("e.yaml"), cache_dir=raw)
    assert result == {"lines": 3, "shards": 2, "skipped": False}
    rows = [json.loads(line) for line in (tmp_path / "corpus.jsonl").read_text().splitlines()]
    # A null text is kept as a record, so that preprocessing counts it as rejected rather than losing it.
    assert rows == [{"text": "Kumain ka na?", "id": 1}, {"text": None, "id": 2}, {"text": "Salamat po", "id": 3}]
    assert download_corpus(load_experiment("e.yaml"), cache_dir=raw)["skipped"] is True
    for path in [*raw.glob("tl/*.parquet"), tmp_path / "corpus.jsonl"]:
        path.unlink()
    with pytest.raises(MorphcptError, match="no parquet shards under tl/"):
        download_corpus(load_experiment("e.yaml"), cache_dir=raw)


def test_data_stats_reports_every_variant_and_scores_alignment(in_workspace: Path) -> None:
    exp = load_experiment("experiment.yaml")
    split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), 4)
    for variant in VARIANTS:
        for chunk in range(1, 5):
            preprocess_chunk(exp, variant, chunk)
    result = subprocess.run(
        [sys.executable, "-m", "morphcpt", "data-stats", "-e", "experiment.yaml", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    stats = json.loads(result.stdout)
    assert stats == json.loads((in_workspace / exp.data.processed_dir / "data_stats.json").read_text())
    rows = stats["variants"]
    assert set(rows) == set(VARIANTS)
    assert all(row["documents"] == 1200 for row in rows.values())
    assert rows["vanilla"]["edits"]["realised_expansion_rate"] == 0.0 and rows["vanilla"]["expansion"] is None
    for variant in ("stochastok", "patok"):
        expansion = rows[variant]["expansion"]
        assert expansion["definition"] == "attempts_per_document" and expansion["expand_prop"] == 0.1
        assert expansion["realised_rate"] == rows[variant]["edits"]["realised_expansion_rate"] > 0
    table = subprocess.run(
        [sys.executable, "-m", "morphcpt", "data-stats", "-e", "experiment.yaml"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stochastok_line = next(line for line in table.splitlines() if line.strip("│ ").startswith("stochastok"))
    assert "attempts_per_document" in stochastok_line
    assert f"{rows['stochastok']['edits']['realised_expansion_rate']:.3f}" in stochastok_line
    assert rows["stochastok"]["tokens_per_word"] > rows["vanilla"]["tokens_per_word"] > 1.0
    # Patok cuts at morpheme boundaries with probability affix_awareness, so it must recall more of them.
    assert rows["patok"]["morphology"]["boundary_recall"] > rows["vanilla"]["morphology"]["boundary_recall"]
    assert all(0.0 <= row["morphology"]["boundary_f1"] <= 1.0 for row in rows.values())


def test_alignment_metrics_on_a_hand_made_segmentation(tmp_path: Path) -> None:
    from morphcpt.data.stats import AnnotatedWord, load_annotated_words, token_boundaries

    words = load_annotated_words(TL.annotated_words)  # type: ignore[arg-type]
    assert len(words) >= 100
    assert AnnotatedWord("kumain", "kain", ("k", "um", "ain"), ("infix:um",)).boundaries == {1, 3}
    bad = tmp_path / "words.tsv"
    bad.write_text("word\troot\tmorphemes\taffixes\nkumain\tkain\tk+um+ai\tinfix:um\n")
    with pytest.raises(MorphcptError, match=r"words.tsv:2: morphemes 'k\+um\+ai' do not spell 'kumain'"):
        load_annotated_words(bad)

    class _Bytes:
        token_bytes: ClassVar[list[bytes]] = [b" ", b"k", b"um", b"ain", b" kum"]

    assert token_boundaries(_Bytes(), np.asarray([0, 1, 2, 3]), skip=1) == {1, 3}  # type: ignore[arg-type]
    assert token_boundaries(_Bytes(), np.asarray([4, 3]), skip=1) == {3}  # type: ignore[arg-type]


def test_sentencepiece_model_through_all_variants(workspace: Path, tmp_path: Path) -> None:
    """A SentencePiece .model (as Gemma ships) trained here; edits must keep every document's text."""
    import sentencepiece as spm

    spm.SentencePieceTrainer.train(
        input=_plain_text(workspace, tmp_path),
        model_prefix=str(tmp_path / "sp"),
        vocab_size=600,
        byte_fallback=True,
        model_type="bpe",
        minloglevel=2,
    )
    tokenizer = load_tokenizer(str(tmp_path / "sp.model"))
    processor_inputs = texts_of(workspace / "corpus.jsonl")[:200]
    table = build_split_table(tokenizer)
    encoded = [np.asarray(ids, dtype=np.int64) for ids in tokenizer.encode_batch(processor_inputs)]
    rng = np.random.default_rng(3)
    patok = Patok(table, tokenizer.token_bytes, PatokVariant(processor="patok"), TL.segment)
    for processor in (Stochastok(table, 0.3), patok):
        edited, counts = processor.process_batch(encoded, rng)
        assert counts.output_tokens > counts.input_tokens
        # The model adds a dummy-prefix space (SentencePiece's default; Gemma 3's tokenizer has none), which
        # SentencePiece's own decode drops only when the first piece still carries it: compare bytes instead.
        # (It also NFKC-normalizes, "…" -> "...": the reference is the canonical encoding's bytes.)
        assert [tokenizer.decode_bytes(e) for e in edited] == [tokenizer.decode_bytes(e) for e in encoded]
        assert all(tokenizer.decode_bytes(e).startswith(b" ") for e in edited)


def _plain_text(workspace: Path, tmp_path: Path) -> str:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(texts_of(workspace / "corpus.jsonl")), encoding="utf-8")
    return str(path)
