"""Seeds derived from (experiment seed, variant, chunk), so a rerun of any task is byte-identical."""

from __future__ import annotations

import hashlib

import numpy as np


def derived_seed(*parts: object) -> int:
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def task_rng(*parts: object) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(derived_seed(*parts)))
