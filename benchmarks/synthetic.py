"""Synthetic telemetry with a planted rare event, shaped like a user's table, for the benchmarks."""
from __future__ import annotations

import numpy as np


def rows_and_labels(rows: int, features: int, window: int, rate: float = 0.05, seed: int = 0):
    """(rows, features) float32 and a 0/1 label per row; a positive follows a rise in feature 0."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features), dtype=np.float32)
    y = (rng.random(rows) < rate).astype(np.int8)
    y[:window] = 0
    hits = np.flatnonzero(y)
    for lag in range(1, 4):  # the three rows before each event carry the signal
        x[hits - lag, 0] += 1.5
    return x, y
