"""Token-edit processors: a document's canonical ids in, edited ids out, with an explicit random generator.

Edits change segmentation, never content: the output's token bytes concatenate to the input's.

- vanilla: identity.
- stochastok (Sims et al. 2025): tokens that have at least one split (two vocabulary tokens whose bytes
  concatenate to it) are replaced by a uniformly chosen split; `expansion` says how many and which:
  - attempts_per_document (the authors' code, the default): int(len(document) x expand_prop) attempts, each
    on a uniformly random token of the current list, which grows as splits happen (a half may be split
    again); an attempt on a token without a split fails.
  - per_token: each token is attempted with probability `expand_prop` and each half of a split once more.
  - splits_per_document: about len(document) x expand_prop splits, each on a uniformly random splittable
    token of the current list (`expand_prop` is the target realised rate).
  The realised rate (splits / input tokens) and the definition are recorded in every chunk's marker.
- patok: affix-aware, with the morpheme boundaries and affixes the language pack's segmenter finds. (1) A
  token that straddles a morpheme boundary is split at the boundary with probability `affix_awareness`.
  (2) Windows of n tokens (n drawn from `num_toks_to_cont` with weights `contract_prob`) start at each
  position with probability `contract_prop`; a window is contracted into one token when its bytes form a
  vocabulary token and it does not cross a morpheme boundary (crossing is allowed with probability
  1 - affix_awareness). (3) StochasTok expansion at `expand_prop`, with the variant's `expansion`, on the
  tokens that are not exactly an affix (as Patok's code does, an affix is never the target of an attempt;
  the halves of a split are always eligible). Each step is bounded, so it terminates on every input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from itertools import pairwise
from pathlib import Path

import numpy as np

from morphcpt.config import Expansion, PatokVariant, StochastokVariant, VanillaVariant
from morphcpt.data.markers import atomic_output
from morphcpt.data.morphology import MorphologyIndex
from morphcpt.data.ragged import gather_rows, ragged_positions
from morphcpt.data.tokenizer import Tokenizer
from morphcpt.languages import LanguagePack, Segmenter, resolve_language

IntArray = np.ndarray


def _filter_slot(keys: IntArray, bits: int) -> IntArray:
    """Fibonacci hashing of pair keys into 2**bits slots (uint64 products wrap, as intended)."""
    return ((keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(64 - bits)).astype(np.intp)


@dataclass
class EditCounts:
    input_tokens: int = 0
    output_tokens: int = 0
    expansions: int = 0
    contractions: int = 0
    boundary_splits: int = 0
    expansion_attempts: int = 0

    def add(self, other: EditCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, float]:
        rate = self.expansions / self.input_tokens if self.input_tokens else 0.0
        return {**self.__dict__, "realised_expansion_rate": round(rate, 6)}


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

    @cached_property
    def _pair_filter(self) -> np.ndarray:
        """A one-hash Bloom filter over pair_keys: most windows are not pairs, and a bit lookup rules them out
        several times faster than a binary search over up to a million keys."""
        # At least 8 slots per key keeps false positives near 12%, in at most 16 MB for a 262k vocabulary.
        bits = max(16, (8 * len(self.pair_keys)).bit_length())
        slots = np.zeros(1 << bits, dtype=bool)
        slots[_filter_slot(self.pair_keys, bits)] = True
        return slots

    def merge(self, left: IntArray, right: IntArray) -> IntArray:
        """The token whose bytes are left+right, or -1; vectorized over arrays."""
        keys = left.astype(np.int64) * self.vocab_size + right.astype(np.int64)
        out = np.full(len(keys), -1, dtype=np.int64)
        slots = self._pair_filter
        maybe = np.flatnonzero(slots[_filter_slot(keys, len(slots).bit_length() - 1)] & (left >= 0) & (right >= 0))
        if len(maybe):
            pos = np.minimum(np.searchsorted(self.pair_keys, keys[maybe]), len(self.pair_keys) - 1)
            hit = self.pair_keys[pos] == keys[maybe]
            out[maybe[hit]] = self.pair_tokens[pos[hit]]
        return out

    @cached_property
    def _cut_keys(self) -> IntArray:
        """For each split row, owner x 64 + the byte offset of its cut; sorted, as rows are grouped by owner
        and ordered by cut within an owner."""
        owners = np.repeat(np.arange(self.vocab_size, dtype=np.int64), np.diff(self.offsets))
        return owners * 64 + self.token_lengths[self.left]

    def split_row(self, tokens: IntArray, cuts: IntArray) -> IntArray:
        """The split-table row that cuts each token at byte `cut` (< 64), or -1 if a side is not a token."""
        keys = tokens * 64 + cuts
        if not len(self._cut_keys):
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self._cut_keys, keys), len(self._cut_keys) - 1)
        return np.where(self._cut_keys[pos] == keys, pos, -1)

    @cached_property
    def longest(self) -> int:
        return int(self.token_lengths.max())

    def ids_for_bytes(self, data: bytes) -> list[int]:
        """Greedy longest-match ids for a byte string (used only for pieces cut at morpheme boundaries)."""
        out: list[int] = []
        longest = self.longest
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
    with atomic_output(path) as tmp, tmp.open("wb") as handle:
        np.savez(
            handle,
            offsets=table.offsets,
            left=table.left,
            right=table.right,
            pair_keys=table.pair_keys,
            pair_tokens=table.pair_tokens,
            vocab_size=table.vocab_size,
            token_lengths=table.token_lengths,
        )
    return table


def _expand_once(
    ids: IntArray, attempt: IntArray, table: SplitTable, rng: np.random.Generator
) -> tuple[IntArray, IntArray, IntArray]:
    """Split the attempted tokens that can be split: new ids, a mask of tokens made by splits, and for each
    new token the index of the token it came from."""
    counts = table.offsets[ids + 1] - table.offsets[ids]
    chosen = attempt & (counts > 0)
    if not chosen.any():
        return ids, np.zeros(len(ids), dtype=bool), np.arange(len(ids))
    where = np.flatnonzero(chosen)
    rows = table.offsets[ids[where]] + (rng.random(len(where)) * counts[where]).astype(np.int64)
    widths = np.where(chosen, 2, 1)
    source = np.repeat(np.arange(len(ids)), widths)
    out = ids[source]
    starts = np.cumsum(widths) - widths
    out[starts[where]] = table.left[rows]
    out[starts[where] + 1] = table.right[rows]
    fresh = np.zeros(len(out), dtype=bool)
    fresh[starts[where]] = True
    fresh[starts[where] + 1] = True
    return out, fresh, source


def split_counts(tokens: IntArray, table: SplitTable) -> IntArray:
    """How many splits each token has."""
    return table.offsets[tokens + 1] - table.offsets[tokens]


def _expand_per_token(
    ids: IntArray, rate: float, table: SplitTable, rng: np.random.Generator, eligible: IntArray | None
) -> tuple[IntArray, IntArray, int, int]:
    attempt = rng.random(len(ids)) < rate
    if eligible is not None:
        attempt &= eligible
    before = len(ids)
    attempts = int(attempt.sum())
    ids, fresh, first = _expand_once(ids, attempt, table, rng)
    # Halves of a split are attempted once more, so a token may be split twice (into three pieces).
    again = fresh & (rng.random(len(ids)) < rate)
    ids, _, second = _expand_once(ids, again, table, rng)
    return ids, first[second], len(ids) - before, attempts + int(again.sum())


@dataclass
class _Clocks:
    """Tokens of the growing lists whose next attempt is drawn: their index among all tokens made so far, their
    document, id, the input token they came from, and the time of their next attempt."""

    index: IntArray
    doc: IntArray
    token: IntArray
    root: IntArray
    next: np.ndarray

    def take(self, mask: IntArray) -> _Clocks:
        return _Clocks(self.index[mask], self.doc[mask], self.token[mask], self.root[mask], self.next[mask])

    @staticmethod
    def join(parts: list[_Clocks]) -> _Clocks:
        fields = ("index", "doc", "token", "root", "next")
        if not parts:
            return _Clocks(*(np.zeros(0, dtype=np.float64 if f == "next" else np.int64) for f in fields))
        return _Clocks(*(np.concatenate([getattr(p, f) for p in parts]) for f in fields))


def _horizon(needed: np.ndarray, clocks: np.ndarray) -> np.ndarray:
    """A time by which a document with `clocks` running should have made `needed` more attempts: attempts by
    time h are at least Poisson(clocks x h); 2 standard deviations of margin leave a few percent of the
    documents short, which one more (small) round makes up."""
    return (needed + 2 * np.sqrt(needed) + 2) / np.maximum(clocks, 1)


def _expand_per_document(
    ids: IntArray,
    owner: IntArray,
    budget: IntArray,
    table: SplitTable,
    rng: np.random.Generator,
    eligible: IntArray | None,
    splits_only: bool,
) -> tuple[IntArray, IntArray, int, int]:
    """`budget[d]` attempts in document d, each on a uniformly random token of its current list (with
    `splits_only`, on a uniformly random splittable one, so every attempt splits), all documents at once.

    The sequential process (pick a token of the current list, split it if it can be split, repeat) is the
    jump chain of one in which every target token has its own exponential clock of rate 1: the next attempt
    falls on a uniformly random token whatever the list's length. Clocks of different tokens are independent,
    so each token's attempts are drawn without looking at the rest of its document, vectorized; a document's
    first budget[d] attempts in time are its attempts. The halves of a split start their own clocks at the
    split, so they are never attempted before it, and cutting at budget[d] keeps a consistent history. The
    clocks run to a horizon per document expected to hold its budget; a document that falls short has its
    horizon extended, which is exact because clocks are memoryless.
    """
    n = len(ids)
    documents = len(budget)
    target = np.ones(n, dtype=bool) if eligible is None else eligible.copy()
    if splits_only:
        target &= split_counts(ids, table) > 0
    target &= budget[owner] > 0
    roots = np.flatnonzero(target)
    if not len(roots):
        return ids, np.arange(n), 0, 0
    doc_start = np.searchsorted(owner, np.arange(documents))
    doc_end = np.searchsorted(owner, np.arange(documents), side="right")
    first_attempt = np.full(n, np.inf)
    first_attempt[roots] = rng.standard_exponential(len(roots))
    clocks = np.bincount(owner[roots], minlength=documents)
    horizon = np.zeros(documents)
    attempted = np.zeros(documents, dtype=np.int64)
    made_tokens: list[IntArray] = [ids]  # every token ever in a list: the input's, then halves in order
    made = n
    parents: list[IntArray] = []  # a split token and the index of its left half (the right one follows)
    events: list[tuple[np.ndarray, IntArray, IntArray, IntArray, IntArray]] = []  # time, doc, which, split?, root
    waiting: list[_Clocks] = []  # tokens whose next attempt is past their document's horizon
    running = np.flatnonzero(clocks > 0)
    first_round = True
    while len(running):
        previous = horizon.copy()
        horizon[running] += _horizon((budget - attempted)[running].astype(np.float64), clocks[running])
        # Input tokens whose first attempt falls in this round's stretch of time, then the waiting tokens.
        if first_round:
            due = roots[first_attempt[roots] <= horizon[owner[roots]]]
        else:
            candidates = ragged_positions(doc_start[running], doc_end[running] - doc_start[running])
            start, doc_of = first_attempt[candidates], owner[candidates]
            due = candidates[(start > previous[doc_of]) & (start <= horizon[doc_of])]
        work = _Clocks(due, owner[due], ids[due], due, first_attempt[due])
        is_running = np.zeros(documents, dtype=bool)
        is_running[running] = True
        pending = _Clocks.join(waiting)
        work = _Clocks.join([work, pending.take(is_running[pending.doc])])
        first_round = False
        waiting = []
        while len(work.index):
            due_now = work.next <= horizon[work.doc]
            waiting.append(work.take(~due_now))
            work = work.take(due_now)
            splits = split_counts(work.token, table) > 0
            events.append((work.next, work.doc, work.index, splits, work.root))
            attempted += np.bincount(work.doc, minlength=documents)
            split = work.take(splits)
            # A split token is replaced by a uniformly chosen split; its halves start their clocks now.
            options = split_counts(split.token, table)
            rows = table.offsets[split.token] + (rng.random(len(split.index)) * options).astype(np.int64)
            halves = np.column_stack((table.left[rows], table.right[rows])).ravel()
            left = made + 2 * np.arange(len(rows))
            parents.append(np.column_stack((split.index, left)))
            made_tokens.append(halves)
            made += len(halves)
            children = _Clocks(
                np.column_stack((left, left + 1)).ravel(),
                np.repeat(split.doc, 2),
                halves,
                np.repeat(split.root, 2),
                np.repeat(split.next, 2) + rng.standard_exponential(len(halves)),
            )
            if splits_only:
                children = children.take(split_counts(children.token, table) > 0)
            failed = work.take(~splits)
            failed.next = failed.next + rng.standard_exponential(len(failed.index))
            work = _Clocks.join([failed, children])
        short = running[attempted[running] < budget[running]]
        if not len(short):
            break
        # Clocks still running in the short documents: input tokens not attempted yet, and the waiting ones.
        unstarted = ragged_positions(doc_start[short], doc_end[short] - doc_start[short])
        unstarted = unstarted[np.isfinite(first_attempt[unstarted])]
        unstarted = unstarted[first_attempt[unstarted] > horizon[owner[unstarted]]]
        pending = _Clocks.join(waiting)
        clocks = np.bincount(owner[unstarted], minlength=documents) + np.bincount(pending.doc, minlength=documents)
        running = short[clocks[short] > 0]

    time, doc, which, splits, root = (np.concatenate([e[i] for e in events]) for i in range(5))
    # Each document keeps its first budget[d] attempts in time; later ones (and the halves they made) never were.
    order = np.lexsort((time, doc))
    doc_sorted = doc[order]
    first_of_doc = np.searchsorted(doc_sorted, doc_sorted, side="left")
    kept = order[(np.arange(len(order)) - first_of_doc) < budget[doc_sorted]]
    split_kept = kept[splits[kept]]
    if not len(split_kept):
        return ids, np.arange(n), 0, len(kept)
    was_split = np.zeros(made, dtype=bool)
    was_split[which[split_kept]] = True
    left_half = np.full(made, -1, dtype=np.int64)
    pairs = np.concatenate(parents)
    left_half[pairs[:, 0]] = pairs[:, 1]
    every_token = np.concatenate(made_tokens)
    # Each input token becomes 1 + (its splits) tokens; only the split ones are laid out, level by level, each
    # split token replaced in place by its two halves.
    widths = 1 + np.bincount(root[split_kept], minlength=n)
    split_roots = np.flatnonzero(widths > 1)
    current = split_roots
    while True:
        here = was_split[current]
        if not here.any():
            break
        grow = np.where(here, 2, 1)
        at = (np.cumsum(grow) - grow)[here]
        lefts = left_half[current[here]]
        current = np.repeat(current, grow)
        current[at], current[at + 1] = lefts, lefts + 1
    out = np.repeat(ids, widths)
    ends = np.cumsum(widths)
    out[ragged_positions((ends - widths)[split_roots], widths[split_roots])] = every_token[current]
    return out, np.repeat(np.arange(n), widths), int(ends[-1]) - n, len(kept)


def stochastok_expand(
    ids: IntArray,
    owner: IntArray,
    rate: float,
    expansion: Expansion,
    table: SplitTable,
    rng: np.random.Generator,
    eligible: IntArray | None = None,
) -> tuple[IntArray, IntArray, int, int]:
    """Expanded ids, for each output token the index of its input token, the number of splits and of attempts.

    `owner` is each token's document (sorted): the per-document definitions count attempts per document.
    """
    if rate <= 0 or len(ids) == 0:
        return ids, np.arange(len(ids)), 0, 0
    if expansion == "per_token":
        return _expand_per_token(ids, rate, table, rng, eligible)
    lengths = np.bincount(owner, minlength=int(owner[-1]) + 1).astype(np.float64)
    if expansion == "attempts_per_document":
        # int(len(token_ids) * expand_prop), in the same float arithmetic as the authors' code.
        budget = np.floor(lengths * rate).astype(np.int64)
    else:
        # Rounded up with probability equal to the fraction, so short documents realise the rate on average.
        budget = np.floor(lengths * rate + rng.random(len(lengths))).astype(np.int64)
    return _expand_per_document(ids, owner, budget, table, rng, eligible, expansion == "splits_per_document")


def _concatenate(documents: list[IntArray]) -> tuple[IntArray, IntArray]:
    """All documents' ids in one array, and the document index of each token."""
    lengths = np.fromiter((len(d) for d in documents), dtype=np.int64, count=len(documents))
    ids = np.concatenate(documents).astype(np.int64) if documents else np.zeros(0, dtype=np.int64)
    return ids, np.repeat(np.arange(len(documents)), lengths)


def _separate(ids: IntArray, owner: IntArray, documents: int) -> list[IntArray]:
    edges = [0, *np.searchsorted(owner, np.arange(1, documents)).tolist(), len(ids)]
    return [ids[a:b] for a, b in pairwise(edges)]


class Processor(ABC):
    """A batch of documents' canonical ids in, edited ids out. Whole batches are processed at once (the
    per-document numpy overhead would otherwise dominate); tokens never move between documents."""

    @abstractmethod
    def process_batch(
        self, documents: list[IntArray], rng: np.random.Generator
    ) -> tuple[list[IntArray], EditCounts]: ...

    def __call__(self, ids: IntArray, rng: np.random.Generator) -> tuple[IntArray, EditCounts]:
        out, counts = self.process_batch([ids], rng)
        return out[0], counts


class Vanilla(Processor):
    def process_batch(self, documents: list[IntArray], rng: np.random.Generator) -> tuple[list[IntArray], EditCounts]:
        tokens = sum(len(d) for d in documents)
        return documents, EditCounts(tokens, tokens)


@dataclass(frozen=True)
class Stochastok(Processor):
    table: SplitTable
    expand_prop: float
    expansion: Expansion = "attempts_per_document"

    def process_batch(self, documents: list[IntArray], rng: np.random.Generator) -> tuple[list[IntArray], EditCounts]:
        ids, owner = _concatenate(documents)
        out, source, splits, attempts = stochastok_expand(ids, owner, self.expand_prop, self.expansion, self.table, rng)
        counts = EditCounts(len(ids), len(out), expansions=splits, expansion_attempts=attempts)
        return _separate(out, owner[source], len(documents)), counts


@dataclass(frozen=True, eq=False)  # hashed by identity, for the cut cache
class Patok(Processor):
    table: SplitTable
    token_bytes: list[bytes]
    config: PatokVariant
    segment: Segmenter = field(repr=False)  # the language pack's: where morpheme boundaries and affixes are

    @cached_property
    def morphology(self) -> MorphologyIndex:
        return MorphologyIndex(self.segment)

    @cached_property
    def flat_bytes(self) -> tuple[np.ndarray, np.ndarray]:
        """All token bytes as one ragged array (offsets, buffer), to join token bytes without Python."""
        buffer = np.frombuffer(b"".join(self.token_bytes), dtype=np.uint8)
        offsets = np.concatenate(([0], np.cumsum(self.table.token_lengths)))
        return offsets, buffer

    def join_bytes(self, ids: IntArray) -> bytes:
        return gather_rows(ids, *self.flat_bytes).tobytes()

    def _starts(self, ids: IntArray) -> IntArray:
        lengths = self.table.token_lengths[ids]
        return np.cumsum(lengths) - lengths

    @lru_cache(maxsize=1 << 16)  # noqa: B019 - one Patok per task; the cache lives as long as it does
    def _cut(self, token: int, mask: int) -> IntArray:
        """The token's bytes cut at every offset set in `mask`, each piece greedily re-encoded."""
        data = self.token_bytes[token]
        edges = [0, *(c for c in range(1, len(data)) if mask >> c & 1), len(data)]
        return np.asarray([t for a, b in pairwise(edges) for t in self.table.ids_for_bytes(data[a:b])], dtype=np.int64)

    def _split_at_boundaries(
        self, ids: IntArray, boundaries: IntArray, rng: np.random.Generator
    ) -> tuple[IntArray, IntArray, int]:
        lengths = self.table.token_lengths[ids]
        starts = np.cumsum(lengths) - lengths
        # Boundaries lie inside words, so each one falls on a byte of some token: the token that holds it.
        holder = np.repeat(np.arange(len(ids)), lengths)[boundaries]
        straddles = starts[holder] < boundaries
        holder, cut_at = holder[straddles], boundaries[straddles]
        if not len(holder):
            return ids, np.arange(len(ids)), 0
        first = np.flatnonzero(np.concatenate(([True], holder[1:] != holder[:-1])))  # boundaries are sorted
        hits = holder[first]
        keep = rng.random(len(hits)) < self.config.affix_awareness
        # A hit is (token, set of cut offsets as a bitmask), cut through a cache: distinct hits are few.
        # Cuts past byte 62 of a token cannot be in the mask; such tokens (long symbol runs) are left whole.
        relative = cut_at - starts[holder]
        bits = np.where(relative < 63, np.left_shift(1, np.minimum(relative, 62)), 0)
        masks = np.bitwise_or.reduceat(bits, first)
        keep &= masks != 0
        hits, masks = hits[keep], masks[keep]
        if not len(hits):
            return ids, np.arange(len(ids)), 0
        # Most hits are one cut whose two sides are both tokens: a row of the split table, found vectorized.
        # The rest (several cuts, or a side that must be re-encoded) go through the cached _cut.
        tokens = ids[hits]
        single = (masks & (masks - 1)) == 0
        row = np.full(len(hits), -1, dtype=np.int64)
        row[single] = self.table.split_row(tokens[single], np.log2(masks[single]).astype(np.int64))
        slow = np.flatnonzero(row < 0)
        pieces = list(map(self._cut, tokens[slow].tolist(), masks[slow].tolist()))
        hit_widths = np.full(len(hits), 2, dtype=np.int64)
        hit_widths[slow] = np.fromiter(map(len, pieces), dtype=np.int64, count=len(pieces))
        widths = np.ones(len(ids), dtype=np.int64)
        widths[hits] = hit_widths
        source = np.repeat(np.arange(len(ids)), widths)
        out = ids[source]
        at = (np.cumsum(widths) - widths)[hits]
        fast = np.flatnonzero(row >= 0)
        out[at[fast]] = self.table.left[row[fast]]
        out[at[fast] + 1] = self.table.right[row[fast]]
        if pieces:
            out[ragged_positions(at[slow], hit_widths[slow])] = np.concatenate(pieces)
        return out, source, len(hits)

    def _contract(
        self, ids: IntArray, owner: IntArray, boundaries: IntArray, rng: np.random.Generator
    ) -> tuple[IntArray, IntArray, int]:
        n = len(ids)
        if n < 2:
            return ids, np.arange(n), 0
        sizes = np.asarray(self.config.num_toks_to_cont)
        begin = np.flatnonzero(rng.random(n - 1) < self.config.contract_prop)
        merged = self.table.merge(ids[begin], ids[begin + 1])
        # Most windows fail at their first pair; only those that merge draw a size and a boundary coin.
        begin, merged = begin[merged >= 0], merged[merged >= 0]
        weights = np.cumsum(self.config.contract_prob)
        choice = np.searchsorted(weights, rng.random(len(begin)) * weights[-1], side="right")
        window = sizes[np.minimum(choice, len(sizes) - 1)]
        ignore_boundaries = rng.random(len(begin)) >= self.config.affix_awareness
        result = np.where(window == 2, merged, -1)
        # Grow the longer windows one token at a time.
        alive = np.flatnonzero(window > 2)
        merged = merged[alive]
        for k in range(2, int(sizes.max())):
            inside = begin[alive] + k < n
            alive, merged = alive[inside], merged[inside]
            merged = self.table.merge(merged, ids[begin[alive] + k])
            found = merged >= 0
            alive, merged = alive[found], merged[found]
            done_now = window[alive] == k + 1
            result[alive[done_now]] = merged[done_now]
            alive, merged = alive[~done_now], merged[~done_now]
        formed = np.flatnonzero(result >= 0)
        first, last = begin[formed], begin[formed] + window[formed] - 1
        cumulative = np.concatenate(([0], np.cumsum(self.table.token_lengths[ids])))
        crossing = np.searchsorted(boundaries, cumulative[last + 1], side="left") - np.searchsorted(
            boundaries, cumulative[first], side="right"
        )
        accepted = (owner[last] == owner[first]) & ((crossing == 0) | ignore_boundaries[formed])
        # Accept non-overlapping windows left to right; only the (few) candidates are visited in Python.
        drop = np.zeros(n, dtype=bool)
        replaced = ids.copy()
        next_free = 0
        contractions = 0
        for i, width, token in zip(
            first[accepted].tolist(), window[formed][accepted].tolist(), result[formed][accepted].tolist(), strict=True
        ):
            if i < next_free:
                continue
            replaced[i] = token
            drop[i + 1 : i + width] = True
            next_free = i + width
            contractions += 1
        kept = np.flatnonzero(~drop)
        return replaced[kept], kept, contractions

    def process_batch(self, documents: list[IntArray], rng: np.random.Generator) -> tuple[list[IntArray], EditCounts]:
        ids, owner = _concatenate(documents)
        counts = EditCounts(input_tokens=len(ids))
        # Documents are joined for the analysis only; no window may cross from one into the next.
        morphology = self.morphology.analyse(self.join_bytes(ids))
        out, source, counts.boundary_splits = self._split_at_boundaries(ids, morphology.boundaries, rng)
        owner = owner[source]
        out, source, counts.contractions = self._contract(out, owner, morphology.boundaries, rng)
        owner = owner[source]
        starts = self._starts(out)
        ends = starts + self.table.token_lengths[out]
        # A token is an affix when an affix span starts where it starts and ends where it ends (no two
        # affixes of a word start at the same byte).
        affix_end_at = np.full(int(ends[-1]) + 1 if len(ends) else 1, -1, dtype=np.int64)
        affix_end_at[morphology.affix_starts] = morphology.affix_ends
        is_affix = affix_end_at[starts] == ends
        out, source, counts.expansions, counts.expansion_attempts = stochastok_expand(
            out, owner, self.config.expand_prop, self.config.expansion, self.table, rng, ~is_affix
        )
        counts.output_tokens = len(out)
        return _separate(out, owner[source], len(documents)), counts


def expansion_record(
    variant: VanillaVariant | StochastokVariant | PatokVariant, edits: dict[str, float]
) -> dict[str, object] | None:
    """What a marker and data-stats say about a variant's StochasTok expansion: the definition of
    `expand_prop` it was made with, and the attempts, splits and realised rate (splits / input tokens)."""
    if isinstance(variant, VanillaVariant):
        return None
    tokens = edits.get("input_tokens", 0)
    return {
        "definition": variant.expansion,
        "expand_prop": variant.expand_prop,
        "attempts": edits.get("expansion_attempts", 0),
        "splits": edits.get("expansions", 0),
        "realised_rate": round(edits.get("expansions", 0) / tokens, 6) if tokens else 0.0,
    }


def make_processor(
    variant: VanillaVariant | StochastokVariant | PatokVariant,
    tokenizer: Tokenizer,
    cache_dir: Path,
    *,
    language: LanguagePack | str,
) -> Processor:
    """The variant's processor; Patok segments words with `language`'s segmenter."""
    if isinstance(variant, VanillaVariant):
        return Vanilla()
    table = cached_split_table(tokenizer, cache_dir)
    if isinstance(variant, StochastokVariant):
        return Stochastok(table, variant.expand_prop, variant.expansion)
    return Patok(table, tokenizer.token_bytes, variant, resolve_language(language).segment)
