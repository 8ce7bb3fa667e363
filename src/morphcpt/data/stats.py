"""Per-variant data statistics: corpus counts from the chunk markers, and how well each variant's
segmentation aligns with gold morpheme boundaries on the annotated word list.

Alignment metrics, on the language pack's annotated words (a TSV of word, root, morphemes, affixes; each
word encoded as it appears in running text, with a leading space, then edited by the variant's processor;
random variants are sampled `samples` times with a fixed seed and averaged):
- boundary precision / recall / F1 (micro-averaged): a predicted boundary is a token boundary strictly
  inside the word; a gold boundary is a morpheme boundary from the annotation.
- MorphScore (after Arnett & Bergen 2024): over words that have a gold boundary and are cut into more
  than one token, the mean fraction of gold boundaries that fall on a token boundary. Words kept whole
  are left out, as in MorphScore, so a tokenizer is not rewarded for never cutting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import numpy as np

from morphcpt.config import Experiment
from morphcpt.context import STATS_FILE
from morphcpt.data.corpus import Record, read_records
from morphcpt.data.markers import marker_path, write_json_atomic
from morphcpt.data.preprocess import DEFAULT_CACHE, chunk_prefix
from morphcpt.data.processors import expansion_record, make_processor
from morphcpt.data.seeds import task_rng
from morphcpt.data.split import chunk_name
from morphcpt.data.tokenizer import Tokenizer, load_tokenizer
from morphcpt.errors import MorphcptError
from morphcpt.languages import LanguagePack, get_language


@dataclass(frozen=True)
class AnnotatedWord:
    word: str
    root: str
    morphemes: tuple[str, ...]
    affixes: tuple[str, ...]

    @property
    def boundaries(self) -> frozenset[int]:
        offsets = np.cumsum([len(m) for m in self.morphemes])[:-1]
        return frozenset(int(o) for o in offsets)


def annotated_words_file(language: LanguagePack) -> Traversable | Path:
    if language.annotated_words is None:
        raise MorphcptError(f"language pack {language.code} has no annotated words to score alignment on")
    return language.annotated_words


def load_annotated_words(path: Traversable | Path) -> list[AnnotatedWord]:
    """Parse the TSV, checking that each segmentation spells its word (errors name the line)."""
    words: list[AnnotatedWord] = []
    header_seen = False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if not header_seen:
            header_seen = True
            if fields != ["word", "root", "morphemes", "affixes"]:
                raise MorphcptError(f"{path}:{number}: expected the header word/root/morphemes/affixes")
            continue
        if len(fields) != 4:
            raise MorphcptError(f"{path}:{number}: expected 4 tab-separated fields, found {len(fields)}")
        word, root, morphemes, affixes = fields
        if morphemes.replace("+", "") != word:
            raise MorphcptError(f"{path}:{number}: morphemes {morphemes!r} do not spell {word!r}")
        words.append(AnnotatedWord(word, root, tuple(morphemes.split("+")), tuple(affixes.split(","))))
    return words


def token_boundaries(tokenizer: Tokenizer, ids: np.ndarray, skip: int) -> frozenset[int]:
    """Token boundaries strictly inside the word, as offsets from the word's start (after `skip` bytes)."""
    ends = np.cumsum([len(tokenizer.token_bytes[int(t)]) for t in ids]) - skip
    total = ends[-1] if len(ends) else 0
    return frozenset(int(e) for e in ends if 0 < e < total)


def alignment(
    experiment: Experiment,
    variant: str,
    tokenizer: Tokenizer,
    words: list[AnnotatedWord],
    samples: int = 5,
    cache_dir: Path = DEFAULT_CACHE,
) -> dict[str, float]:
    language = get_language(experiment.language)
    processor = make_processor(experiment.variants[variant], tokenizer, cache_dir, language=language)
    encoded = [np.asarray(ids, dtype=np.int64) for ids in tokenizer.encode_batch([" " + w.word for w in words])]
    rng = task_rng(experiment.seed, variant, 0)
    hits = predicted = gold = 0
    scores: list[float] = []
    for _ in range(samples):
        edited, _counts = processor.process_batch(encoded, rng)
        for word, ids in zip(words, edited, strict=True):
            skip = len(tokenizer.decode_bytes(ids)) - len(word.word.encode("utf-8"))
            cuts = token_boundaries(tokenizer, ids, skip)
            matched = len(cuts & word.boundaries)
            hits, predicted, gold = hits + matched, predicted + len(cuts), gold + len(word.boundaries)
            if word.boundaries and cuts:
                scores.append(matched / len(word.boundaries))
    precision = hits / predicted if predicted else 0.0
    recall = hits / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "boundary_precision": round(precision, 4),
        "boundary_recall": round(recall, 4),
        "boundary_f1": round(f1, 4),
        "morphscore": round(float(np.mean(scores)), 4) if scores else 0.0,
        "annotated_words": len(words),
    }


def _corpus_words(experiment: Experiment) -> int:
    """Whitespace-separated words of the chunks' accepted records (the denominator of tokens per word)."""
    total = 0
    for index in range(1, experiment.data.num_chunks + 1):
        path = Path(experiment.data.chunks_dir) / chunk_name(index)
        for item in read_records(path, experiment.data.text_key):
            if isinstance(item, Record):
                total += len(item.text.split())
    return total


def corpus_counts(experiment: Experiment, variant: str) -> dict[str, Any]:
    totals: dict[str, Any] = {"documents": 0, "tokens": 0, "rejected": 0}
    edits: dict[str, float] = {}
    definitions: set[str] = set()
    for index in range(1, experiment.data.num_chunks + 1):
        path = marker_path(chunk_prefix(experiment, variant, index))
        if not path.exists():
            raise MorphcptError(f"{path} not found; preprocess {variant} chunk {index} first")
        marker = json.loads(path.read_text(encoding="utf-8"))
        for key in totals:
            totals[key] += marker[key]
        for key, value in marker["edits"].items():
            if key != "realised_expansion_rate":
                edits[key] = edits.get(key, 0) + value
        if "expansion" not in marker:
            definitions.add("per_token")  # markers from before the definition was recorded were made per token
        elif marker["expansion"]:
            definitions.add(marker["expansion"]["definition"])
    edits["realised_expansion_rate"] = round(edits["expansions"] / edits["input_tokens"], 6) if edits else 0.0
    config = experiment.variants[variant]
    expansion = expansion_record(config, edits)
    if expansion is not None and definitions != {expansion["definition"]}:
        # A realised rate over chunks of different definitions would describe no setting.
        raise MorphcptError(
            f"variant {variant}: its chunks were made with expansion {', '.join(sorted(definitions))} but the "
            f"experiment asks for {expansion['definition']}; preprocess them again (morphcpt submit reruns them)"
        )
    return {**totals, "edits": edits, "expansion": expansion}


def data_stats(
    experiment: Experiment, samples: int = 5, words_file: Traversable | Path | None = None
) -> dict[str, Any]:
    """Statistics of every variant; alignment on `words_file`, by default the experiment's language pack's."""
    words = load_annotated_words(words_file or annotated_words_file(get_language(experiment.language)))
    tokenizer = load_tokenizer(experiment.data.tokenizer)
    corpus_words = _corpus_words(experiment)
    result: dict[str, Any] = {"corpus_words": corpus_words, "samples": samples, "variants": {}}
    for variant in experiment.variants:
        counts = corpus_counts(experiment, variant)
        text_tokens = counts["tokens"] - counts["documents"]  # without the end-of-document tokens
        counts["tokens_per_word"] = round(text_tokens / corpus_words, 4) if corpus_words else 0.0
        counts["morphology"] = alignment(experiment, variant, tokenizer, words, samples)
        result["variants"][variant] = counts
    write_json_atomic(Path(experiment.data.processed_dir) / STATS_FILE, result)
    return result
