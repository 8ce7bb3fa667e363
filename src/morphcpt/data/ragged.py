"""Ragged arrays stored as CSR (row offsets + flat values), gathered without Python loops."""

from __future__ import annotations

import numpy as np


def ragged_positions(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """starts[i], starts[i] + 1, ..., starts[i] + counts[i] - 1 for each i, concatenated in order."""
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.repeat(starts, counts) + within


def gather_rows(rows: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rows `rows` of the ragged array (offsets, values), concatenated in order."""
    return values[ragged_positions(offsets[rows], offsets[rows + 1] - offsets[rows])]


def _reserve(array: np.ndarray, needed: int) -> np.ndarray:
    if len(array) >= needed:
        return array
    grown = np.zeros((max(needed, 2 * len(array)), *array.shape[1:]), dtype=array.dtype)
    grown[: len(array)] = array
    return grown


class GrowingRagged:
    """A ragged table of int64 rows of `columns` values each, appended to in batches. Storage doubles when
    full, so n appends cost O(total) rather than the O(n x total) of concatenating each time."""

    def __init__(self, columns: int) -> None:
        self._offsets = np.zeros(1024, dtype=np.int64)
        self._values = np.zeros((1024, columns), dtype=np.int64)
        self.rows = 0

    def append(self, counts: np.ndarray, values: np.ndarray) -> None:
        """Add len(counts) rows; row i holds counts[i] values, taken in order from `values` (n x columns)."""
        end = int(self._offsets[self.rows])
        self._offsets = _reserve(self._offsets, self.rows + 1 + len(counts))
        self._offsets[self.rows + 1 : self.rows + 1 + len(counts)] = end + np.cumsum(counts)
        self._values = _reserve(self._values, end + len(values))
        self._values[end : end + len(values)] = values
        self.rows += len(counts)

    def gather(self, rows: np.ndarray, base: np.ndarray) -> np.ndarray:
        """Rows `rows` concatenated, each row's values shifted by its entry in `base`."""
        offsets = self._offsets[: self.rows + 1]
        counts = offsets[rows + 1] - offsets[rows]
        return np.repeat(base, counts)[:, None] + self._values[ragged_positions(offsets[rows], counts)]
