"""Ragged arrays stored as CSR (row offsets + flat values), gathered without Python loops."""

from __future__ import annotations

import numpy as np


def gather_rows(rows: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Rows `rows` of the ragged array (offsets, values), concatenated in order."""
    counts = offsets[rows + 1] - offsets[rows]
    within = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return values[np.repeat(offsets[rows], counts) + within]


def row_lengths(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    return offsets[rows + 1] - offsets[rows]
