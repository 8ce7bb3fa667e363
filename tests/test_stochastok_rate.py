"""StochasTok's rate (issue 17): `expansion` says what `expand_prop` means, the authors' definition is the
default, and every chunk marker and data-stats name the definition beside the rate it realised.

The authors' algorithm (Sims et al. 2025, StochastokProcessor.expand) is written out below as plain
sequential Python, the reference the vectorised one is held to, on a real corpus and a BPE tokenizer
trained here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from morphcpt.config import Experiment, PatokVariant, load_experiment
from morphcpt.data.markers import marker_path
from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer
from morphcpt.data.preprocess import chunk_prefix, preprocess_chunk
from morphcpt.data.processors import Patok, SplitTable, Stochastok, build_split_table
from morphcpt.data.split import split_corpus
from morphcpt.data.tokenizer import Tokenizer, load_tokenizer
from morphcpt.languages import get_language
from morphcpt.stages.base import marker_completion
from morphcpt.stages.preprocess import preprocess_settings

TL = get_language("tl")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rate")
    build_corpus(root / "corpus.jsonl", documents=1200, seed=11, language=TL)
    train_bytelevel_tokenizer(root / "corpus.jsonl", root / "tokenizer.json", vocab_size=3000)
    source = (REPO / "configs/experiments/demo.yaml").read_text()
    source = source.replace("corpus: data/corpora/demo_tl.jsonl", "corpus: corpus.jsonl")
    source = source.replace("tokenizer: data/demo/tokenizer/tokenizer.json", "tokenizer: tokenizer.json")
    (root / "experiment.yaml").write_text(source)
    return root


@pytest.fixture(scope="module")
def tokenizer(workspace: Path) -> Tokenizer:
    return load_tokenizer(str(workspace / "tokenizer.json"))


@pytest.fixture(scope="module")
def table(tokenizer: Tokenizer) -> SplitTable:
    return build_split_table(tokenizer)


@pytest.fixture(scope="module")
def documents(workspace: Path, tokenizer: Tokenizer) -> list[np.ndarray]:
    texts = [json.loads(line)["text"] for line in (workspace / "corpus.jsonl").read_text().splitlines()]
    return [np.asarray(ids, dtype=np.int64) for ids in tokenizer.encode_batch(texts)]


def splittable(ids: np.ndarray, table: SplitTable) -> np.ndarray:
    return table.offsets[ids + 1] > table.offsets[ids]


def authors_expand(ids: list[int], expand_prop: float, table: SplitTable, rng: np.random.Generator) -> int:
    """The authors' loop, one document: int(len x expand_prop) attempts at a uniformly random index of the
    current list; a token with splits is replaced by a uniformly chosen one. Returns the number of splits."""
    splits = 0
    for _ in range(int(len(ids) * expand_prop)):
        index = int(rng.integers(len(ids)))
        token = ids[index]
        options = int(table.offsets[token + 1] - table.offsets[token])
        if options:
            row = int(table.offsets[token]) + int(rng.integers(options))
            ids[index : index + 1] = [int(table.left[row]), int(table.right[row])]
            splits += 1
    return splits


def prepared(workspace: Path, monkeypatch: pytest.MonkeyPatch, **stochastok: object) -> Experiment:
    monkeypatch.chdir(workspace)
    exp = load_experiment("experiment.yaml")
    variant = exp.variants["stochastok"].model_copy(update=stochastok)
    exp = exp.model_copy(update={"variants": {**exp.variants, "stochastok": variant}})
    split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), exp.data.num_chunks)
    return exp


def chunk_ids(exp: Experiment, tokenizer: Tokenizer, chunk: int) -> list[np.ndarray]:
    path = Path(exp.data.chunks_dir) / f"chunk_{chunk:04d}.jsonl"
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    return [np.asarray(ids, dtype=np.int64) for ids in tokenizer.encode_batch(texts)]


def test_authors_definition_realises_attempts_times_the_splittable_share(
    workspace: Path, tokenizer: Tokenizer, table: SplitTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = prepared(workspace, monkeypatch)
    assert exp.variants["stochastok"].expansion == "attempts_per_document"  # the default, as shipped
    for chunk in range(1, exp.data.num_chunks + 1):
        preprocess_chunk(exp, "stochastok", chunk)
        marker = json.loads(marker_path(chunk_prefix(exp, "stochastok", chunk)).read_text())
        docs = chunk_ids(exp, tokenizer, chunk)
        tokens = sum(len(d) for d in docs)
        attempts = sum(int(len(d) * 0.1) for d in docs)
        share = sum(int(splittable(d, table).sum()) for d in docs) / tokens
        expansion = marker["expansion"]
        assert expansion["definition"] == "attempts_per_document" and expansion["expand_prop"] == 0.1
        assert expansion["attempts"] == attempts  # every attempt made, none more
        assert expansion["realised_rate"] == marker["edits"]["realised_expansion_rate"]
        # Each attempt lands on a splittable token with about the input's share (halves are shorter, so
        # the share drifts down a little as the list grows).
        assert expansion["realised_rate"] == pytest.approx(attempts * share / tokens, abs=0.01)
        assert expansion["realised_rate"] < 0.1 * share  # floors and failed attempts: below expand_prop


def test_vectorised_attempts_match_the_authors_sequential_loop(documents: list[np.ndarray], table: SplitTable) -> None:
    """Mean splits over many draws, the vectorised process against the authors' loop; at 0.8 halves are often
    drawn again, which only the growing-list process gets right."""
    docs = documents[:300]
    draws = 60
    for expand_prop in (0.1, 0.8):
        processor = Stochastok(table, expand_prop, "attempts_per_document")
        ours = [processor.process_batch(docs, np.random.default_rng(seed))[1].expansions for seed in range(draws)]
        rng = np.random.default_rng(12345)
        theirs = [sum(authors_expand(d.tolist(), expand_prop, table, rng) for d in docs) for _ in range(draws)]
        error = np.sqrt((np.var(ours) + np.var(theirs)) / draws)
        assert abs(np.mean(ours) - np.mean(theirs)) < 4 * error + 1, (expand_prop, np.mean(ours), np.mean(theirs))


def test_one_attempt_documents_split_with_exactly_their_splittable_share(
    documents: list[np.ndarray], table: SplitTable
) -> None:
    """10-19 tokens at 0.1 is one attempt on the input list: it splits with probability share_d, exactly."""
    docs = [d[: 10 + i % 10] for i, d in enumerate(documents) if len(d) >= 19][:500]
    expected = sum(float(splittable(d, table).mean()) for d in docs)
    variance = sum(float(splittable(d, table).mean() * (1 - splittable(d, table).mean())) for d in docs)
    processor = Stochastok(table, 0.1, "attempts_per_document")
    rng = np.random.default_rng(7)
    draws = 40
    results = [processor.process_batch(docs, rng)[1] for _ in range(draws)]
    assert all(counts.expansion_attempts == len(docs) for counts in results)
    mean = np.mean([counts.expansions for counts in results])
    assert abs(mean - expected) < 4 * np.sqrt(variance / draws), (mean, expected)


def test_per_token_realises_more_than_the_authors_definition(documents: list[np.ndarray], table: SplitTable) -> None:
    rates = {
        expansion: Stochastok(table, 0.1, expansion).process_batch(documents, np.random.default_rng(1))[1]
        for expansion in ("attempts_per_document", "per_token", "splits_per_document")
    }
    per_token = rates["per_token"].as_dict()["realised_expansion_rate"]
    authors = rates["attempts_per_document"].as_dict()["realised_expansion_rate"]
    assert per_token > authors + 0.01
    # The target-rate definition realises expand_prop itself, every attempt a split.
    target = rates["splits_per_document"]
    assert target.expansions == target.expansion_attempts
    assert target.as_dict()["realised_expansion_rate"] == pytest.approx(0.1, abs=0.005)


@pytest.mark.parametrize("expansion", ["attempts_per_document", "per_token", "splits_per_document"])
def test_every_definition_keeps_content_and_is_seeded(
    documents: list[np.ndarray], table: SplitTable, tokenizer: Tokenizer, expansion: str
) -> None:
    docs = documents[:200]
    first, counts = Stochastok(table, 0.3, expansion).process_batch(docs, np.random.default_rng(3))  # type: ignore[arg-type]
    again, _ = Stochastok(table, 0.3, expansion).process_batch(docs, np.random.default_rng(3))  # type: ignore[arg-type]
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert [tokenizer.decode_bytes(d) for d in first] == [tokenizer.decode_bytes(d) for d in docs]
    assert counts.output_tokens == sum(len(d) for d in first) == counts.input_tokens + counts.expansions


def test_patok_expands_with_its_variant_definition(
    documents: list[np.ndarray], table: SplitTable, tokenizer: Tokenizer
) -> None:
    """With no contraction and no boundary cut, Patok's last step sees the input: the authors' definition makes
    int(len x expand_prop) attempts per document (an affix is never a target, Patok's code draws again)."""
    docs = documents[:300]
    attempts = sum(int(len(d) * 0.2) for d in docs)

    def patok(expansion: str) -> Patok:
        config = PatokVariant(
            processor="patok",
            contract_prop=0.0,
            affix_awareness=0.0,
            expand_prop=0.2,
            expansion=expansion,  # type: ignore[arg-type]
        )
        return Patok(table, tokenizer.token_bytes, config, TL.segment)

    authors = patok("attempts_per_document").process_batch(docs, np.random.default_rng(2))[1]
    assert authors.contractions == authors.boundary_splits == 0
    assert authors.expansion_attempts == attempts
    per_token = patok("per_token").process_batch(docs, np.random.default_rng(2))[1]
    assert per_token.expansion_attempts != attempts and per_token.expansions > authors.expansions


def test_changing_the_expansion_reruns_the_chunk_and_says_why(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = prepared(workspace, monkeypatch)
    preprocess_chunk(exp, "stochastok", 1)
    marker = marker_path(chunk_prefix(exp, "stochastok", 1))
    assert marker_completion(marker, preprocess_settings(exp, "stochastok")).done
    per_token = prepared(workspace, monkeypatch, expansion="per_token")
    found = marker_completion(marker, preprocess_settings(per_token, "stochastok"))
    assert not found.done and found.why == 'expansion changed ("attempts_per_document" -> "per_token")'
    redo = preprocess_chunk(per_token, "stochastok", 1)
    assert redo["skipped"] is False and redo["expansion"]["definition"] == "per_token"


def test_data_stats_is_stale_when_a_variant_changes_its_expansion(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from morphcpt.context import RunContext
    from morphcpt.data.stats import data_stats
    from morphcpt.stages.data_stats import DataStats

    exp = prepared(workspace, monkeypatch)
    for variant in exp.variants:
        for chunk in range(1, exp.data.num_chunks + 1):
            preprocess_chunk(exp, variant, chunk)
    stats = data_stats(exp, samples=1)
    assert stats["variants"]["stochastok"]["expansion"]["definition"] == "attempts_per_document"
    ctx = RunContext.create(exp, workspace / "experiment.yaml", root=workspace)
    job = ctx.graph.jobs["data_stats"]
    assert DataStats().completion(ctx, job, 0).done
    changed = prepared(workspace, monkeypatch, expansion="splits_per_document")
    found = DataStats().completion(RunContext.create(changed, workspace / "experiment.yaml", root=workspace), job, 0)
    assert not found.done
    assert found.why == "expansion of stochastok changed (attempts_per_document -> splits_per_document)"
