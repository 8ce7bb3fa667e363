"""Benchmarks: generated answers checked independently, gold handling proven by oracle / always-A / tie
scorers, PACUTE's published format, a real tiny HF model in both modes with resume, and the analysis."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.evaluation.analysis import analyze, wilson
from morphcpt.evaluation.generate import LEVELS, PACUTE_SUITES, generate_suite, write_benchmarks
from morphcpt.evaluation.items import Item
from morphcpt.evaluation.run import evaluate_scorers, load_benchmark
from morphcpt.evaluation.scoring import HFScorer, normalize, score_benchmark, summarize
from morphcpt.languages import get_language
from morphcpt.languages.tl import rules

VOWEL = re.compile(r"[aeiou]")
TL = get_language("tl")


@pytest.fixture(scope="module")
def suites() -> dict[str, list[Item]]:
    out = {s: generate_suite("pacute", s, 300, 7, language=TL) for s in PACUTE_SUITES}
    out.update({s: generate_suite("hierarchical", s, 300, 7, language=TL) for s in LEVELS})
    return out


def independent_check(item: Item) -> None:
    """Recompute the answer without the generator's rule code where possible."""
    src, answer = item.source, item.answer
    if item.task == "apply_infix":
        infix = src["affix"]
        assert answer.index(infix) <= 2 and answer.replace(infix, "", 1) == src["root"]
    elif item.task == "apply_suffix":
        stem, root = answer[: -len(src["affix"])], src["root"]
        assert answer.endswith(src["affix"]) and len(stem) == len(root)
        assert all(a == b or (b, a) == ("o", "u") for a, b in zip(stem, root, strict=True))
    elif item.task == "apply_prefix":
        prefix = src["affix"]
        assert answer.replace("-", "").endswith(src["root"])
        assert answer.replace("-", "")[: -len(src["root"])] in {prefix, "pam", "pan"}
        assert ("-" in answer) == (prefix[-1] not in "aeiou" and src["root"][0] in "aeiou")
    elif item.task == "char_count":
        assert int(answer) == len(src["word"])
    elif item.task == "count_letter":
        assert int(answer) == src["word"].count(src["letter"])
    elif item.task == "syllable_count":
        assert int(answer) == len(VOWEL.findall(src["word"]))
    elif item.task == "syllabify":
        assert answer.replace("-", "") == src["word"] and all(len(VOWEL.findall(p)) == 1 for p in answer.split("-"))
    elif item.task == "letter_at":
        assert src["word"][src["index"]] == answer
    elif item.task == "spelling":
        assert answer.replace(" ", "") == src["word"]
    elif item.task == "delete":
        assert len(answer) == len(src["word"]) - 1 and Counter(src["word"]) - Counter(answer) != Counter()
    elif item.task == "swap":
        assert sorted(answer) == sorted(src["word"]) and answer[0] == src["word"][-1]
    elif item.task in ("extract_root", "remove_affix"):
        assert answer == src["root"]
        word = src["word"].replace("-", "")
        assert len(word) > len(answer) and (src["affix"] in word)
    elif item.task == "identify_affix":
        assert answer.strip("-") == src["affix"] and src["affix"] in src["word"]


def test_generated_suites_are_large_valid_and_checked(suites: dict[str, list[Item]]) -> None:
    for name, items in suites.items():
        assert len(items) == 300, name
        assert len({i.id for i in items}) == 300
        positions = Counter(i.gold for i in items)
        assert all(0.15 < positions[p] / 300 < 0.35 for p in range(4)), (name, positions)
        for item in items:
            item.check()
            assert sum(option == item.answer for option in item.options) == 1
            independent_check(item)
    assert generate_suite("pacute", "affixation", 50, 7, language="tl") == suites["affixation"][:50]


def test_rules_on_hand_checked_forms() -> None:
    assert rules.apply_infix("um", "kain") == "kumain" and rules.apply_infix("um", "alis") == "umalis"
    assert rules.apply_infix("in", "ngiti") == "nginiti"
    assert rules.apply_prefix("mag", "aral") == "mag-aral" and rules.apply_prefix("pang", "bansa") == "pambansa"
    assert rules.apply_suffix("in", "inom") == "inumin" and rules.apply_suffix("an", "tulong") == "tulungan"
    assert rules.apply_circumfix("ka", "an", "buhay") == "kabuhayan"
    assert rules.progressive_um("kain") == "kumakain" and rules.contemplated_um("alis") == "aalis"
    assert rules.syllables("kumain") == ["ku", "ma", "in"] and rules.syllables("pantalon") == ["pan", "ta", "lon"]
    assert rules.syllables("nagluluto") == ["nag", "lu", "lu", "to"]
    from morphcpt.data.stats import load_annotated_words

    # Every prefix/infix/suffix word of the hand-annotated list is what the rules produce from its root.
    for word in load_annotated_words(TL.annotated_words):  # type: ignore[arg-type]
        if len(word.affixes) != 1:
            continue
        kind, affix = word.affixes[0].split(":")
        if kind == "infix":
            assert rules.apply_infix(affix, word.root) == word.word
        elif kind == "suffix" and word.root[-1] not in "aeiou" and affix in ("in", "an"):
            assert rules.apply_suffix(affix, word.root) == word.word


@dataclass
class FakeScorer:
    """Test doubles that see only what a model sees (contexts, options) plus the gold key for the oracle."""

    name: str
    policy: str
    gold: dict[str, str] = field(default_factory=dict)

    def option_logprobs(self, contexts: list[str], options: list[list[str]]) -> list[list[float]]:
        out = []
        for ctx, opts in zip(contexts, options, strict=True):
            if self.policy == "oracle":
                out.append([0.0 if o == self.gold[ctx] else -5.0 for o in opts])
            elif self.policy == "always_a":
                out.append([0.0, -1.0, -1.0, -1.0])
            else:  # every option equally likely: a tie must never count as correct
                out.append([-1.0] * len(opts))
        return out

    def generate(self, contexts: list[str], max_new_tokens: int) -> list[str]:
        return [f" '{self.gold[c].upper()}'." if self.policy == "oracle" else "x" for c in contexts]


def _gold_by_context(items: list[Item]) -> dict[str, str]:
    from morphcpt.evaluation.scoring import context

    return {context(i, lang, TL): i.answer for i in items for lang in ("en", "tl")}


def test_oracle_always_a_and_ties(suites: dict[str, list[Item]], tmp_path: Path) -> None:
    items = [i for name in PACUTE_SUITES for i in suites[name]]
    gold = _gold_by_context(items)
    for policy in ("oracle", "always_a", "tie"):
        scorer = FakeScorer(policy, policy, gold)
        path = score_benchmark(scorer, "pacute", items, tmp_path, ["mcq", "gen"], ["en", "tl"], language=TL)
        summary = summarize(path)
        mcq = sum(s["mcq"]["correct"] for s in summary.values()) / sum(s["mcq"]["n"] for s in summary.values())
        gen = sum(s["gen"]["correct"] for s in summary.values()) / sum(s["gen"]["n"] for s in summary.values())
        if policy == "oracle":
            assert mcq == 1.0 and gen == 1.0
        elif policy == "always_a":
            assert 0.2 < mcq < 0.3 and gen == 0.0
        else:
            assert mcq == 0.0
    assert normalize('  "Kumain." ') == "kumain"


def test_pacute_published_format_loads_and_scores(tmp_path: Path) -> None:
    directory = tmp_path / "benchmarks" / "pacute"
    directory.mkdir(parents=True)
    mcq = {
        "category": "affixation",
        "subcategory": "infix",
        "prompts": [
            {
                "text_en": "Which word is 'kain' with the infix -um-?",
                "text_tl": "Alin ang 'kain' na may gitlaping -um-?",
                "mcq_options": {
                    "correct": "kumain",
                    "incorrect1": "umkain",
                    "incorrect2": "kainum",
                    "incorrect3": "kinain",
                },
                "choice1": "umkain",
                "choice2": "kainum",
                "choice3": "kumain",
                "choice4": "kinain",
            }
        ],
        "label": "C",
    }
    gen = {
        "category": "composition",
        "subcategory": "spelling",
        "prompts": [
            {
                "text_en": "How many letters are in 'bahay'?",
                "text_tl": "Ilang titik ang 'bahay'?",
                "mcq_options": {"correct": "5", "incorrect1": "4", "incorrect2": "6", "incorrect3": "7"},
            }
        ],
        "label": "5",
    }
    (directory / "published.jsonl").write_text(json.dumps(mcq) + "\n" + json.dumps(gen) + "\n")
    items = load_benchmark(tmp_path / "benchmarks", "pacute")
    assert [i.answer for i in items] == ["kumain", "5"]
    assert items[0].gold == 2 and items[0].options[2] == "kumain"
    assert items[1].options[items[1].gold] == "5"
    scorer = FakeScorer("oracle", "oracle", _gold_by_context(items))
    evaluate_scorers([scorer], ["pacute"], "both", tmp_path / "benchmarks", tmp_path / "results", ["en"], language=TL)
    summary = json.loads((tmp_path / "results/oracle/summary.json").read_text())["pacute"]
    assert summary["affixation"]["mcq"]["accuracy"] == 1.0 and summary["composition"]["gen"]["accuracy"] == 1.0
    # A label that contradicts mcq_options.correct is an error, not a silent wrong gold.
    mcq["label"] = "A"
    (directory / "published.jsonl").write_text(json.dumps(mcq) + "\n")
    with pytest.raises(MorphcptError, match=r"published.jsonl:1: label A picks 'umkain'"):
        load_benchmark(tmp_path / "benchmarks", "pacute")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Gemma 3 with a tokenizer trained here, saved as a HF directory."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from morphcpt.data.offline_corpus import build_corpus, train_bytelevel_tokenizer
    from morphcpt.training.export import save_tokenizer

    root = tmp_path_factory.mktemp("model")
    build_corpus(root / "corpus.jsonl", documents=300, seed=1, language=TL)
    train_bytelevel_tokenizer(root / "corpus.jsonl", root / "tokenizer.json", vocab_size=800)
    torch.manual_seed(0)
    config = Gemma3TextConfig(
        vocab_size=800, hidden_size=32, num_hidden_layers=1, intermediate_size=64, num_attention_heads=2,
        num_key_value_heads=1, head_dim=16, max_position_embeddings=256, sliding_window=256,
    )  # fmt: skip
    model_dir = root / "tiny"
    Gemma3ForCausalLM(config).save_pretrained(model_dir)
    save_tokenizer(str(root / "tokenizer.json"), model_dir)
    return model_dir


def test_tiny_model_scores_both_modes_and_resumes(tiny_model: Path, tmp_path: Path) -> None:
    write_benchmarks(tmp_path / "bench", ["pacute", "hierarchical"], 12, seed=3, language=TL)
    results = tmp_path / "results"
    scorer = HFScorer.load(str(tiny_model))
    evaluate_scorers(
        [scorer], ["pacute", "hierarchical"], "both", tmp_path / "bench", results, ["en"], max_new_tokens=4, language=TL
    )
    pacute = results / "tiny" / "pacute.jsonl"
    records = [json.loads(line) for line in pacute.read_text().splitlines()]
    assert len(records) == 4 * 12 * 2
    assert all(r["pred"] in (None, 0, 1, 2, 3) for r in records if r["mode"] == "mcq")
    # A killed run leaves a torn line; the rerun drops it and scores only what is missing.
    text = pacute.read_text()
    pacute.write_text(text[: text.rindex("\n", 0, len(text) - 1)] + '\n{"id": "pacute/compo')
    evaluate_scorers([scorer], ["pacute"], "both", tmp_path / "bench", results, ["en"], max_new_tokens=4, language=TL)
    again = [json.loads(line) for line in pacute.read_text().splitlines()]
    assert len(again) == len(records) and len({(r["id"], r["mode"]) for r in again}) == len(again)
    summary = json.loads((results / "tiny" / "summary.json").read_text())
    assert set(summary) == {"pacute", "hierarchical"} and set(summary["hierarchical"]) == set(LEVELS)


def test_analysis_table_matches_the_per_item_results(suites: dict[str, list[Item]], tmp_path: Path) -> None:
    items = [i for name in LEVELS for i in suites[name]][:600]
    gold = _gold_by_context(items)
    for name, policy in (("baseline", "always_a"), ("patok", "oracle"), ("stochastok", "tie")):
        score_benchmark(
            FakeScorer(name, policy, gold), "hierarchical", items, tmp_path, ["mcq", "gen"], ["en"], language=TL
        )
    stats = tmp_path / "data_stats.json"
    morphology = {"boundary_precision": 0.5, "boundary_recall": 0.6, "boundary_f1": 0.55, "morphscore": 0.4}
    row = {"tokens_per_word": 1.9, "edits": {"realised_expansion_rate": 0.1}, "morphology": morphology}
    stats.write_text(json.dumps({"variants": {"patok": row}}))
    result = analyze(tmp_path, data_stats=stats)
    assert len(result["plots"]) >= 2 and all((tmp_path / p).stat().st_size > 1000 for p in result["plots"])
    rows = list(csv.DictReader((tmp_path / "accuracy.csv").open()))
    for row in rows:
        records = [
            json.loads(line) for line in (tmp_path / row["model"] / "hierarchical.jsonl").read_text().splitlines()
        ]
        chosen = [r for r in records if r["suite"] == row["suite"] and r["mode"] == row["mode"]]
        correct = sum(r["correct"] for r in chosen)
        assert int(row["n"]) == len(chosen) and int(row["correct"]) == correct
        low, high = wilson(correct, len(chosen))
        assert f"{100 * correct / len(chosen):.1f} [{100 * low:.1f}, {100 * high:.1f}]" in result["table"]
    report = (tmp_path / "report.md").read_text()
    header = next(line for line in report.splitlines() if line.startswith("| benchmark | suite | mode |"))
    assert header.split("|")[4:-1] == [" baseline ", " stochastok ", " patok "]  # each model once
    assert "| patok | 1.900 |" in report and "(+" in report and "![deltas.png](deltas.png)" in report


def test_bad_input_is_named(tmp_path: Path) -> None:
    directory = tmp_path / "hierarchical"
    directory.mkdir()
    (directory / "level_0.jsonl").write_text('{"id": "x", "benchmark": "hierarchical"}\n')
    with pytest.raises(MorphcptError, match=r"level_0.jsonl:1: malformed benchmark item: missing field 'suite'"):
        load_benchmark(tmp_path, "hierarchical")
    with pytest.raises(MorphcptError, match="unknown benchmark 'pacutee'"):
        load_benchmark(tmp_path, "pacutee")
    with pytest.raises(MorphcptError, match="cannot load model"):
        HFScorer.load(str(tmp_path / "no-model"))
    with pytest.raises(MorphcptError, match="no results"):
        analyze(tmp_path / "empty")
    with pytest.raises(MorphcptError, match="no items to score"):
        score_benchmark(FakeScorer("f", "tie"), "pacute", [], tmp_path, ["mcq"], ["en"], language=TL)
    result = subprocess.run(
        [
            sys.executable,
            "scripts/run_evaluation.py",
            "--models",
            "m",
            "--benchmarks",
            "nope",
            "--benchmarks-dir",
            str(tmp_path),
        ],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "unknown benchmark 'nope'" in result.stderr
