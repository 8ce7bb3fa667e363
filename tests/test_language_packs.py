"""Language packs: a made-up language (tests/toy_language, "xx") drives Patok, data-stats and the benchmark
generator through the same generic code as Tagalog; the registry finds built-in, registered and entry-point
packs, and an unknown `language:` is an error that names the packs there are."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from morphcpt.config import load_experiment
from morphcpt.data.markers import marker_path
from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer
from morphcpt.data.preprocess import chunk_prefix, preprocess_chunk
from morphcpt.data.split import split_corpus
from morphcpt.data.stats import data_stats
from morphcpt.data.tokenizer import Tokenizer, load_tokenizer
from morphcpt.errors import ConfigError, MorphcptError
from morphcpt.evaluation.generate import generate_suite, write_benchmarks
from morphcpt.evaluation.items import read_items
from morphcpt.evaluation.scoring import context, score_benchmark, summarize
from morphcpt.languages import (
    LanguagePack,
    builtin_languages,
    get_language,
    known_languages,
    register_language,
    unregister_language,
)
from toy_language import PACK, make_pack, rules

VOWELS = set("aeiou")
# Patok cutting at every morpheme boundary and nothing else; and the same with every other token expanded.
PATOK_VARIANTS = (
    "  patok: {processor: patok, affix_awareness: 1.0, contract_prop: 0.0, expand_prop: 0.0}\n"
    "  patok_keep: {processor: patok, affix_awareness: 1.0, contract_prop: 0.0, expand_prop: 1.0}\n"
)


@pytest.fixture(scope="module")
def toy() -> Iterator[LanguagePack]:
    register_language(PACK)
    yield PACK
    unregister_language(PACK.code)


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"demo.yaml no longer has {old!r}"
    return text.replace(old, new)


def write_experiment(root: Path, language: str, name: str) -> Path:
    """The demo experiment on the toy corpus: one chunk, its own processed dir, and `language:`."""
    source = (REPO / "configs/experiments/demo.yaml").read_text()
    source = _replace(source, "corpus: data/corpora/demo_tl.jsonl", "corpus: corpus.jsonl")
    source = _replace(source, "tokenizer: data/demo/tokenizer/tokenizer.json", "tokenizer: tokenizer.json")
    source = _replace(source, "processed_dir: data/demo/processed", f"processed_dir: processed_{name}")
    source = _replace(source, "  num_chunks: 4\n", "  num_chunks: 1\n")
    source = _replace(source, "  patok: {processor: patok}\n", PATOK_VARIANTS)
    source = _replace(source, "\nseed: 1234\n", f"\nseed: 1234\nlanguage: {language}\n")
    path = root / f"{name}.yaml"
    path.write_text(source)
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory, toy: LanguagePack) -> Path:
    """A toy corpus from the pack's corpus source and a byte-level tokenizer trained on it."""
    root = tmp_path_factory.mktemp("toy")
    build_corpus(root / "corpus.jsonl", documents=400, seed=2, language=toy)
    train_bytelevel_tokenizer(root / "corpus.jsonl", root / "tokenizer.json", vocab_size=600)
    return root


def documents(prefix: Path) -> list[np.ndarray]:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    dataset = IndexedDataset(str(prefix))
    return [np.array(dataset[i]) for i in range(len(dataset))]  # copies: the memory map closes with `dataset`


@dataclass
class Boundaries:
    """How the toy morphology lines up with the tokens of preprocessed documents."""

    boundaries: int = 0
    not_cut: int = 0
    suffixes: int = 0
    whole_suffixes: int = 0
    words: Counter[str] = field(default_factory=Counter)


def toy_alignment(tokenizer: Tokenizer, docs: list[np.ndarray]) -> Boundaries:
    found = Boundaries()
    for doc in docs:
        pieces = [tokenizer.token_bytes[int(t)] for t in doc[:-1]]  # without the end-of-document token
        ends = np.cumsum([len(p) for p in pieces])
        cuts = {0, *ends.tolist()}
        tokens = set(zip((ends - [len(p) for p in pieces]).tolist(), ends.tolist(), strict=True))
        for match in re.finditer(rb"[A-Za-z]+", b"".join(pieces)):
            word = match.group().decode()
            found.words[word.lower()] += 1
            segmentation = rules.segment(word)
            for offset in segmentation.boundaries:
                found.boundaries += 1
                found.not_cut += match.start() + offset not in cuts
            for start, end in segmentation.affixes:
                if end == len(word):
                    found.suffixes += 1
                    found.whole_suffixes += (match.start() + start, match.start() + end) in tokens
    return found


def test_patok_and_data_stats_follow_the_toy_pack(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(workspace)
    tokenizer = load_tokenizer("tokenizer.json")
    results: dict[str, dict[str, Boundaries]] = {}
    splits: dict[str, int] = {}
    for language in ("xx", "tl"):
        exp = load_experiment(write_experiment(workspace, language, f"exp_{language}"))
        assert exp.language == language
        split_corpus(Path(exp.data.corpus), Path(exp.data.chunks_dir), 1)
        results[language] = {}
        for variant in ("patok", "patok_keep"):
            preprocess_chunk(exp, variant, 1)
            prefix = chunk_prefix(exp, variant, 1)
            results[language][variant] = toy_alignment(tokenizer, documents(prefix))
        splits[language] = json.loads(marker_path(chunk_prefix(exp, "patok", 1)).read_text())["edits"][
            "boundary_splits"
        ]

    xx, tl = results["xx"], results["tl"]
    # The corpus is the toy pack's: its words, with prefixes, the infix and suffixes.
    assert set(xx["patok"].words) <= set(rules.derived_words())
    assert {"zotobun", "telobun", "tobunix", "zohatob"} & set(xx["patok"].words)
    # With the toy pack every toy morpheme boundary is a token boundary; Tagalog's segmenter knows none of them.
    assert xx["patok"].boundaries > 200 and xx["patok"].not_cut == 0 and splits["xx"] > 100
    assert splits["tl"] == 0 and tl["patok"].not_cut > tl["patok"].boundaries // 2
    # Expansion leaves tokens that are exactly an affix alone: the toy suffixes -ix/-oz stay whole under the toy
    # pack, and are broken up under Tagalog, for which they are no affix.
    assert xx["patok_keep"].suffixes > 50 and xx["patok_keep"].whole_suffixes == xx["patok_keep"].suffixes
    assert tl["patok_keep"].whole_suffixes < tl["patok_keep"].suffixes // 2

    # data-stats scores alignment on the toy pack's annotated words, with the toy segmenter inside Patok.
    exp = load_experiment("exp_xx.yaml")
    for variant in ("vanilla", "stochastok"):
        preprocess_chunk(exp, variant, 1)
    stats = data_stats(exp, samples=1)
    rows = stats["variants"]
    assert rows["patok"]["morphology"]["annotated_words"] == 10
    assert rows["patok"]["morphology"]["boundary_recall"] == 1.0
    assert rows["vanilla"]["morphology"]["boundary_recall"] < 1.0


def _toy_form(source: dict[str, object]) -> str:
    """The toy rules restated from their docstrings, independently of rules.py."""
    root, affix, kind = str(source["root"]), str(source["affix"]), source["kind"]
    if kind == "prefix":
        return affix + ("h" if affix[-1] in VOWELS and root[0] in VOWELS else "") + root
    if kind == "suffix":
        return (root[:-1] if root[-1] in VOWELS else root) + affix
    return root[0] + "el" + root[1:]


def test_benchmark_items_are_built_from_the_toy_rules(tmp_path: Path) -> None:
    assert rules.apply_prefix("zo", "atob") == "zohatob" and rules.apply_prefix("vek", "atob") == "vekatob"
    assert rules.apply_infix("tobun") == "telobun" and rules.apply_suffix("ix", "rudo") == "rudix"
    assert rules.syllables("vekgorat") == ["vek", "go", "rat"] and rules.syllables("quhatob") == ["qu", "ha", "tob"]

    items = generate_suite("pacute", "affixation", 60, 3, language=PACK)
    assert len(items) == 60 and generate_suite("pacute", "affixation", 60, 3, language=PACK) == items
    assert set(Counter(i.source["kind"] for i in items)) == {"prefix", "infix", "suffix"}
    assert any(i.source["kind"] == "prefix" and "h" in i.answer.replace(str(i.source["root"]), "") for i in items)
    for item in items:
        affixes = PACK.affixes.prefixes + PACK.affixes.infixes + PACK.affixes.suffixes
        assert item.source["root"] in rules.ROOTS and item.source["affix"] in affixes
        assert item.answer == _toy_form(item.source) == item.options[item.gold]
        assert set(item.prompts) == {"en", "xx"} and item.prompt("xx").startswith("Zo-pleko")
        assert context(item, "xx", PACK) == f"{item.prompts['xx']}\nRespondo:"
    with pytest.raises(ConfigError, match=r"prompt language\(s\) tl not offered by language pack xx"):
        context(items[0], "tl", PACK)

    syllables = generate_suite("pacute", "syllabification", 30, 3, language=PACK)
    for item in syllables:
        parts = item.answer.split("-")
        assert "".join(parts) == item.source["word"] and all(len(VOWELS & set(p)) >= 1 for p in parts)
        assert item.answer == "-".join(rules.syllables(str(item.source["word"])))

    # The toy prompts survive the JSON files; a suite the pack has no maker for is refused before any file.
    path = tmp_path / "affixation.jsonl"
    path.write_text("".join(item.to_json() + "\n" for item in items))
    assert '"prompt_xx": "Zo-pleko' in path.read_text() and read_items(path) == items
    with pytest.raises(MorphcptError, match=r"language pack xx has no generator for pacute/composition"):
        write_benchmarks(tmp_path / "bench", ["pacute"], 20, 3, language=PACK)
    assert not (tmp_path / "bench").exists()


@dataclass
class Oracle:
    """Answers from a gold key by context, and remembers the contexts it was shown."""

    gold: dict[str, str]
    name: str = "oracle"
    seen: list[str] = field(default_factory=list)

    def option_logprobs(self, contexts: list[str], options: list[list[str]]) -> list[list[float]]:
        self.seen += contexts
        return [[0.0 if o == self.gold[c] else -5.0 for o in opts] for c, opts in zip(contexts, options, strict=True)]

    def generate(self, contexts: list[str], max_new_tokens: int) -> list[str]:
        self.seen += contexts
        return [self.gold[c] for c in contexts]


def test_scoring_asks_in_the_pack_prompt_languages(tmp_path: Path) -> None:
    items = generate_suite("pacute", "affixation", 20, 4, language=PACK)
    scorer = Oracle({context(i, lang, PACK): i.answer for i in items for lang in PACK.prompt_languages})
    path = score_benchmark(scorer, "pacute", items, tmp_path, ["mcq", "gen"], ["xx"], language=PACK)
    assert summarize(path)["affixation"]["mcq"]["accuracy"] == 1.0
    assert scorer.seen and all(c.endswith("\nRespondo:") for c in scorer.seen)
    with pytest.raises(ConfigError, match=r"tl not offered by language pack xx \(it has: en, xx\)"):
        score_benchmark(scorer, "pacute", items, tmp_path, ["mcq"], ["tl"], language=PACK)


def test_registry_finds_registered_and_built_in_packs(toy: LanguagePack) -> None:
    assert "tl" in builtin_languages() and get_language("tl").code == "tl"
    assert get_language("xx") is toy and {"tl", "xx"} <= set(known_languages())
    impostor = make_pack("xx")
    with pytest.raises(ConfigError, match="language 'xx' is already registered"):
        register_language(impostor)
    assert get_language("xx") is toy
    register_language(impostor, replace=True)
    assert get_language("xx") is impostor
    register_language(toy, replace=True)
    with pytest.raises(ConfigError, match="prompt_languages must include 'en'"):
        dataclasses.replace(toy, prompt_languages=("xx",))
    with pytest.raises(ConfigError, match="no answer cue for prompt language"):
        dataclasses.replace(toy, answer_cues={"en": "Answer:"})


def test_a_third_party_pack_is_found_through_its_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed distribution declaring [morphcpt.languages] entry points (here a bare dist-info on sys.path)."""
    dist = tmp_path / "toy_pack-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-pack\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[morphcpt.languages]\nxy = toy_language:xy_pack\nxz = toy_language:xy_pack\n"
    )
    monkeypatch.setattr("morphcpt.languages._loaded", {})
    with pytest.raises(ConfigError, match="unknown language 'xy'"):
        get_language("xy")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert {"xy", "xz"} <= set(known_languages())
    pack = get_language("xy")
    assert pack.code == "xy" and pack.segment is rules.segment and get_language("xy") is pack
    with pytest.raises(ConfigError, match=r"language 'xz': entry point toy_language:xy_pack holds the pack for 'xy'"):
        get_language("xz")


def test_an_unknown_language_is_a_clear_error_naming_the_known_packs(toy: LanguagePack, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown language 'zz' \(experiment `language:`\)") as info:
        get_language("zz")
    assert {"tl", "xx"} <= set(str(info.value).split("known language packs: ")[1].split(", "))
    # From an experiment file, in a fresh process (the toy pack is not registered there).
    path = write_experiment(tmp_path, "zz", "exp_zz")
    for command in (
        ["benchmarks", "--out", str(tmp_path / "bench")],
        ["preprocess", "--variant", "patok", "--chunk", "1"],
    ):
        if command[0] == "preprocess":
            (tmp_path / "corpus.jsonl").write_text('{"text": "zotobun"}\n')
            split_corpus(tmp_path / "corpus.jsonl", tmp_path / "data/demo/chunks", 1)
        result = subprocess.run(
            [sys.executable, "-m", "morphcpt", *command, "-e", str(path)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert result.returncode == 2, result.stderr
        assert "error: unknown language 'zz' (experiment `language:`); known language packs: " in result.stderr
        assert "tl" in result.stderr.strip().split("known language packs: ")[1].split(", ")
    assert not (tmp_path / "bench").exists()


def test_evaluate_offers_the_prompt_languages_of_the_pack(tmp_path: Path) -> None:
    path = write_experiment(tmp_path, "tl", "exp_tl")
    result = subprocess.run(
        [sys.executable, "-m", "morphcpt", "evaluate", "-e", str(path), "--lang", "xx", "--models", "m"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and "xx: language pack tl asks in en, tl" in result.stderr
