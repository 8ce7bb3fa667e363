"""Token-edit processors: a document's canonical ids in, edited ids out, with an explicit random generator.

Edits change segmentation, never content: the output's token bytes concatenate to the input's.

- vanilla: identity.
- stochastok (Sims et al. 2025): each token is an expansion *attempt* with probability `expand_prop`; an
  attempt on a token that has at least one split (two vocabulary tokens whose bytes concatenate to it)
  replaces it by a uniformly chosen split, and each half is attempted once more at the same rate (splits
  may be split again). Tokens without a split stay. So `expand_prop` is the attempt rate; the realised
  rate (splits / input tokens) is lower and is reported in every chunk's marker.
- patok: affix-aware. (1) A token that straddles a morpheme boundary is split at the boundary with
  probability `affix_awareness`. (2) Windows of n tokens (n drawn from `num_toks_to_cont` with weights
  `contract_prob`) start at each position with probability `contract_prop`; a window is contracted into
  one token when its bytes form a vocabulary token and it does not cross a morpheme boundary (crossing is
  allowed with probability 1 - affix_awareness). (3) StochasTok expansion at `expand_prop` on every token
  that is not exactly an affix. Each step is one bounded pass, so it terminates on every input.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Protocol

import numpy as np

from morphcpt.config import PatokVariant, StochastokVariant, VanillaVariant
from morphcpt.data.morphology import document_morphology
from morphcpt.data.tokenizer import Tokenizer

IntArray = np.ndarray


@dataclass
class EditCounts:
    input_tokens: int = 0
    output_tokens: int = 0
    expansions: int = 0
    contractions: int = 0
    boundary_splits: int = 0

    def add(self, other: EditCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, float]:
        rate = self.expansions / self.input_tokens if self.input_tokens else 0.0
        return {**self.__dict__, "realised_expansion_rate": round(rate, 6)}


class Processor(Protocol):
    def __call__(self, ids: IntArray, rng: np.random.Generator) -> tuple[IntArray, EditCounts]: ...


@dataclass(frozen=True)
class SplitTable:
    """For token t: its splits are rows offsets[t]:offsets[t+1] of (left, right). `merge` is the inverse."""

    offsets: IntArray
    left: IntArray
    right: IntArray
    pair_keys: IntArray  # sorted left * vocab + right
    pair_tokens: IntArray
    vocab_size: int
    token_lengths: IntArray
    by_bytes: dict[bytes, int] = field(repr=False)

    def merge(self, left: IntArray, right: IntArray) -> IntArray:
        """The token whose bytes are left+right, or -1; vectorized over arrays."""
        keys = left.astype(np.int64) * self.vocab_size + right.astype(np.int64)
        pos = np.searchsorted(self.pair_keys, keys)
        pos = np.minimum(pos, len(self.pair_keys) - 1)
        found = (len(self.pair_keys) > 0) & (self.pair_keys[pos] == keys) & (left >= 0) & (right >= 0)
        return np.where(found, self.pair_tokens[pos], -1)

    def ids_for_bytes(self, data: bytes) -> list[int]:
        """Greedy longest-match ids for a byte string (used only for pieces cut at morpheme boundaries)."""
        out: list[int] = []
        longest = int(self.token_lengths.max())
        i = 0
        while i < len(data):
            for length in range(min(longest, len(data) - i), 0, -1):
                token = self.by_bytes.get(data[i : i + length])
                if token is not None:
                    out.append(token)
                    i += length
                    break
            else:
                raise ValueError(f"byte {data[i]:#x} has no token in this vocabulary")
        return out


def _ids_by_bytes(tokenizer: Tokenizer) -> dict[bytes, int]:
    """Each text piece's first id (special tokens decode to nothing and are never split targets)."""
    by_bytes: dict[bytes, int] = {}
    for index, data in enumerate(tokenizer.token_bytes):
        if data and index not in tokenizer.special_ids:
            by_bytes.setdefault(data, index)
    return by_bytes


def build_split_table(tokenizer: Tokenizer) -> SplitTable:
    pieces = tokenizer.token_bytes
    by_bytes = _ids_by_bytes(tokenizer)
    counts = np.zeros(len(pieces), dtype=np.int64)
    lefts: list[int] = []
    rights: list[int] = []
    for index, data in enumerate(pieces):
        if len(data) < 2 or index in tokenizer.special_ids:
            continue
        for cut in range(1, len(data)):
            left = by_bytes.get(data[:cut])
            if left is None:
                continue
            right = by_bytes.get(data[cut:])
            if right is not None:
                lefts.append(left)
                rights.append(right)
                counts[index] += 1
    offsets = np.zeros(len(pieces) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    left_arr = np.asarray(lefts, dtype=np.int64)
    right_arr = np.asarray(rights, dtype=np.int64)
    owners = np.repeat(np.arange(len(pieces), dtype=np.int64), counts)
    keys = left_arr * len(pieces) + right_arr
    order = np.argsort(keys, kind="stable")
    keys, owners_sorted = keys[order], owners[order]
    unique = np.concatenate(([True], keys[1:] != keys[:-1])) if len(keys) else np.zeros(0, dtype=bool)
    lengths = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    return SplitTable(offsets, left_arr, right_arr, keys[unique], owners_sorted[unique], len(pieces), lengths, by_bytes)


def cached_split_table(tokenizer: Tokenizer, cache_dir: Path) -> SplitTable:
    """The split table, cached on disk by the tokenizer's fingerprint (it only depends on the vocabulary)."""
    path = cache_dir / f"split_table_{tokenizer.fingerprint}.npz"
    if path.exists():
        data = np.load(path)
        return SplitTable(
            data["offsets"],
            data["left"],
            data["right"],
            data["pair_keys"],
            data["pair_tokens"],
            int(data["vocab_size"]),
            data["token_lengths"],
            _ids_by_bytes(tokenizer),
        )
    table = build_split_table(tokenizer)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{hashlib.sha1(str(id(table)).encode()).hexdigest()[:8]}.npz")
    np.savez(
        tmp,
        offsets=table.offsets,
        left=table.left,
        right=table.right,
        pair_keys=table.pair_keys,
        pair_tokens=table.pair_tokens,
        vocab_size=table.vocab_size,
        token_lengths=table.token_lengths,
    )
    tmp.replace(path)
    return table


def _expand_once(
    ids: IntArray, attempt: IntArray, table: SplitTable, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Split the attempted tokens that can be split; returns new ids and a mask of tokens made by splits."""
    counts = table.offsets[ids + 1] - table.offsets[ids]
    chosen = attempt & (counts > 0)
    if not chosen.any():
        return ids, np.zeros(len(ids), dtype=bool)
    where = np.flatnonzero(chosen)
    rows = table.offsets[ids[where]] + (rng.random(len(where)) * counts[where]).astype(np.int64)
    widths = np.where(chosen, 2, 1)
    out = np.repeat(ids, widths)
    starts = np.cumsum(widths) - widths
    out[starts[where]] = table.left[rows]
    out[starts[where] + 1] = table.right[rows]
    fresh = np.zeros(len(out), dtype=bool)
    fresh[starts[where]] = True
    fresh[starts[where] + 1] = True
    return out, fresh


def stochastok_expand(
    ids: IntArray, rate: float, table: SplitTable, rng: np.random.Generator, eligible: IntArray | None = None
) -> tuple[IntArray, int]:
    if rate <= 0 or len(ids) == 0:
        return ids, 0
    attempt = rng.random(len(ids)) < rate
    if eligible is not None:
        attempt &= eligible
    before = len(ids)
    ids, fresh = _expand_once(ids, attempt, table, rng)
    # Halves of a split are attempted once more, so a token may be split twice (into three pieces).
    ids, _ = _expand_once(ids, fresh & (rng.random(len(ids)) < rate), table, rng)
    return ids, len(ids) - before


@dataclass(frozen=True)
class Vanilla:
    def __call__(self, ids: IntArray, rng: np.random.Generator) -> tuple[IntArray, EditCounts]:
        return ids, EditCounts(len(ids), len(ids))


@dataclass(frozen=True)
class Stochastok:
    table: SplitTable
    expand_prop: float

    def __call__(self, ids: IntArray, rng: np.random.Generator) -> tuple[IntArray, EditCounts]:
        out, splits = stochastok_expand(ids, self.expand_prop, self.table, rng)
        return out, EditCounts(len(ids), len(out), expansions=splits)


@dataclass(frozen=True)
class Patok:
    table: SplitTable
    token_bytes: list[bytes]
    config: PatokVariant

    def _split_at_boundaries(
        self, ids: IntArray, starts: IntArray, boundaries: IntArray, rng: np.random.Generator
    ) -> tuple[IntArray, int]:
        ends = starts + self.table.token_lengths[ids]
        # The token holding boundary b is the first whose end passes b; it straddles b if it starts before b.
        holder = np.searchsorted(ends, boundaries, side="right")
        in_range = holder < len(ids)
        holder, cut_at = holder[in_range], boundaries[in_range]
        hits = np.unique(holder[starts[holder] < cut_at])
        if len(hits) == 0:
            return ids, 0
        pieces: list[IntArray] = []
        previous = 0
        splits = 0
        for token_index in hits:
            if rng.random() >= self.config.affix_awareness:
                continue
            start, end = int(starts[token_index]), int(ends[token_index])
            cuts = boundaries[(boundaries > start) & (boundaries < end)] - start
            data = self.token_bytes[int(ids[token_index])]
            edges = [0, *map(int, cuts), len(data)]
            new_ids = [t for a, b in pairwise(edges) for t in self.table.ids_for_bytes(data[a:b])]
            pieces.append(ids[previous:token_index])
            pieces.append(np.asarray(new_ids, dtype=ids.dtype))
            previous = token_index + 1
            splits += 1
        pieces.append(ids[previous:])
        return np.concatenate(pieces), splits

    def _contract(
        self, ids: IntArray, starts: IntArray, boundaries: IntArray, rng: np.random.Generator
    ) -> tuple[IntArray, int]:
        n = len(ids)
        if n < 2:
            return ids, 0
        sizes = np.asarray(self.config.num_toks_to_cont)
        window = sizes[rng.choice(len(sizes), size=n, p=np.asarray(self.config.contract_prob))]
        start_here = rng.random(n) < self.config.contract_prop
        ignore_boundaries = rng.random(n) >= self.config.affix_awareness
        merged = ids.astype(np.int64)
        valid = np.ones(n, dtype=bool)
        result = np.full(n, -1, dtype=np.int64)
        for k in range(1, int(sizes.max())):
            nxt = np.full(n, -1, dtype=np.int64)
            if k < n:
                nxt[: n - k] = ids[k:]
            merged = self.table.merge(np.where(valid, merged, -1), nxt)
            valid = merged >= 0
            done_now = window == k + 1
            result[done_now] = merged[done_now]
        cumulative = np.concatenate(([0], np.cumsum(self.table.token_lengths[ids])))
        window_end = cumulative[np.minimum(np.arange(n) + window, n)]
        crossing = np.searchsorted(boundaries, window_end, side="left") - np.searchsorted(
            boundaries, starts, side="right"
        )
        candidate = start_here & (result >= 0) & ((crossing == 0) | ignore_boundaries)
        # Accept non-overlapping windows left to right; only the (few) candidates are visited in Python.
        drop = np.zeros(n, dtype=bool)
        replaced = ids.copy()
        next_free = 0
        contractions = 0
        for i in np.flatnonzero(candidate):
            if i < next_free:
                continue
            width = int(window[i])
            replaced[i] = result[i]
            drop[i + 1 : i + width] = True
            next_free = i + width
            contractions += 1
        return replaced[~drop], contractions

    def __call__(self, ids: IntArray, rng: np.random.Generator) -> tuple[IntArray, EditCounts]:
        counts = EditCounts(input_tokens=len(ids))
        data = b"".join(self.token_bytes[int(t)] for t in ids)
        boundary_list, affix_spans = document_morphology(data)
        boundaries = np.asarray(sorted(set(boundary_list)), dtype=np.int64)

        def token_starts(current: IntArray) -> IntArray:
            lengths = self.table.token_lengths[current]
            return np.cumsum(lengths) - lengths

        out, counts.boundary_splits = self._split_at_boundaries(ids, token_starts(ids), boundaries, rng)
        out, counts.contractions = self._contract(out, token_starts(out), boundaries, rng)
        starts = token_starts(out)
        ends = starts + self.table.token_lengths[out]
        if affix_spans:
            span_keys = np.asarray([a * (1 << 32) + b for a, b in affix_spans], dtype=np.int64)
            is_affix = np.isin(starts * (1 << 32) + ends, span_keys)
        else:
            is_affix = np.zeros(len(out), dtype=bool)
        out, counts.expansions = stochastok_expand(out, self.config.expand_prop, self.table, rng, ~is_affix)
        counts.output_tokens = len(out)
        return out, counts


def make_processor(
    variant: VanillaVariant | StochastokVariant | PatokVariant, tokenizer: Tokenizer, cache_dir: Path
) -> Processor:
    if isinstance(variant, VanillaVariant):
        return Vanilla()
    table = cached_split_table(tokenizer, cache_dir)
    if isinstance(variant, StochastokVariant):
        return Stochastok(table, variant.expand_prop)
    return Patok(table, tokenizer.token_bytes, variant)
