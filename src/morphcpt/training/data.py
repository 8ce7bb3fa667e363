"""Checks on a training dataset made before any compute, and the megatron-core GPTDataset the CPU trainer
reads (the NeMo backend builds the same datasets through PreTrainingDataModule).

megatron-core's builder can loop forever when a split has too few documents for the samples asked for,
so counts are checked here first, with an error that says what to change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from morphcpt.data.indexed import prefix_files
from morphcpt.data.markers import marker_path
from morphcpt.errors import MorphcptError

# Document split between train / validation / test, as megatron-core's "98,2,0" string.
SPLIT = (98, 2, 0)


@dataclass(frozen=True)
class DatasetFacts:
    prefix: Path
    documents: int
    tokens: int
    max_id: int


def _tokenizer_fingerprints(prefix: Path) -> set[str]:
    """Fingerprints of the tokenizers the chunks were made with, read from the chunk markers."""
    fingerprints: set[str] = set()
    for marker in sorted(prefix.parent.glob("chunk_*.done.json")):
        fingerprint = json.loads(marker.read_text(encoding="utf-8"))["parameters"].get("tokenizer_fingerprint")
        if fingerprint:
            fingerprints.add(fingerprint)
    return fingerprints


def check_dataset(prefix: Path, vocab_size: int, tokenizer_fingerprint: str | None = None) -> DatasetFacts:
    """The prefix exists, is complete, and every id fits the model's vocabulary."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    bin_path, idx_path = prefix_files(prefix)
    missing = [str(p) for p in (bin_path, idx_path) if not p.exists()]
    if missing:
        raise MorphcptError(f"data prefix {prefix}: missing {', '.join(missing)}; run the merge stage first")
    if prefix.name == "all" and not marker_path(prefix).exists():
        raise MorphcptError(f"data prefix {prefix}: no completion marker; the merge did not finish")
    if tokenizer_fingerprint is not None:
        found = _tokenizer_fingerprints(prefix)
        if found and found != {tokenizer_fingerprint}:
            raise MorphcptError(
                f"data prefix {prefix} was tokenized with a different tokenizer (fingerprints {sorted(found)}, "
                f"the experiment's is {tokenizer_fingerprint}); preprocess again or fix data.tokenizer"
            )
    dataset = IndexedDataset(str(prefix))
    tokens = np.memmap(bin_path, dtype=dataset.index.dtype, mode="r")
    max_id = int(tokens.max()) if len(tokens) else -1
    if max_id >= vocab_size:
        raise MorphcptError(
            f"data prefix {prefix}: token id {max_id} does not fit the model's vocabulary of {vocab_size}; "
            "the dataset was made with another tokenizer"
        )
    return DatasetFacts(prefix, len(dataset), len(tokens), max_id)


def check_counts(facts: DatasetFacts, seq_length: int) -> None:
    """Enough documents for every non-empty split and enough tokens for one sample."""
    total = sum(SPLIT)
    for name, share in zip(("train", "validation"), SPLIT[:2], strict=True):
        if round(facts.documents * share / total) < 1:
            raise MorphcptError(
                f"data prefix {facts.prefix}: {facts.documents} documents leave the {name} split "
                f"({share}/{total}) empty; use a larger corpus"
            )
    if facts.tokens < seq_length + 1:
        raise MorphcptError(
            f"data prefix {facts.prefix}: {facts.tokens} tokens are fewer than one sample of seq_length "
            f"{seq_length} + 1"
        )


class _MegatronTokenizer:
    """The attributes megatron-core's GPTDataset reads from a tokenizer."""

    def __init__(self, eod: int, vocab_size: int, name: str) -> None:
        self.eod = eod
        self.pad = eod
        self.vocab_size = vocab_size
        self.unique_identifiers = {"class": "morphcpt", "name": name}


def _data_digest(prefix: Path) -> str:
    import hashlib
    import json

    from morphcpt.stages.base import recorded_outputs

    outputs = recorded_outputs(prefix) or {}
    return hashlib.sha256(json.dumps(outputs, sort_keys=True).encode()).hexdigest()[:16]


def build_gpt_datasets(
    prefix: Path, seq_length: int, seed: int, samples: tuple[int, int], eod: int, vocab_size: int, name: str
) -> tuple[Any, Any]:
    """Train and validation GPTDatasets over one prefix (cached index files go next to the data)."""
    from megatron.core.datasets.blended_megatron_dataset_builder import BlendedMegatronDatasetBuilder
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    config = GPTDatasetConfig(
        random_seed=seed,
        sequence_length=seq_length,
        blend=([str(prefix)], None),
        split=",".join(map(str, SPLIT)),
        tokenizer=_MegatronTokenizer(eod, vocab_size, name),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        mid_level_dataset_surplus=0.005,
        # Megatron keys its index cache by the config, not by the data: a cache per dataset checksum keeps a
        # rebuilt dataset (an edited parameter) from reusing the old one's sample indices.
        path_to_cache=str(prefix.parent / "cache" / _data_digest(prefix)),
    )
    train, valid, _ = BlendedMegatronDatasetBuilder(
        GPTDataset, [samples[0], samples[1], 0], lambda: True, config
    ).build()
    return train, valid
