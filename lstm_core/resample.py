"""Imbalance strategies, applied to the training windows of one fold and nothing else.

``none`` and ``class_weight`` leave the windows alone (``class_weight`` returns a BCE ``pos_weight``);
``smote`` flattens windows to (n, L·F) for imbalanced-learn and reshapes what it returns. Synthetic windows
are marked, so a test can prove that none of them reaches validation or test.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstm_core.config import ResampleConfig
from lstm_core.data import DataError
from lstm_core.windows import WindowSet


@dataclass(frozen=True)
class Resampled:
    """Training windows after resampling, the loss weight to use, and what was done."""

    windows: WindowSet
    pos_weight: float | None = None
    info: dict[str, float | int | str] = field(default_factory=dict)


def _counts(y: np.ndarray) -> tuple[int, int]:
    pos = int(y.sum())
    return len(y) - pos, pos


def resample(train: WindowSet, cfg: ResampleConfig, seed: int) -> Resampled:
    """Apply ``cfg.strategy`` to the training windows only."""
    neg, pos = _counts(train.y)
    info: dict[str, float | int | str] = {"strategy": cfg.strategy, "negatives_before": neg, "positives_before": pos}
    if cfg.strategy == "none":
        return Resampled(train, None, info)
    if pos == 0:
        raise DataError(f"resample.strategy={cfg.strategy} needs positives in the training part; it has none")
    if cfg.strategy == "class_weight":
        weight = neg / pos
        return Resampled(train, weight, {**info, "pos_weight": weight})
    return _smote(train, cfg, seed, info)


def _smote(train: WindowSet, cfg: ResampleConfig, seed: int, info: dict) -> Resampled:
    from imblearn.over_sampling import SMOTE  # imported here: only this strategy needs it

    neg, pos = _counts(train.y)
    if pos < cfg.k_neighbors + 1:
        raise DataError(
            f"SMOTE needs more positive training windows than k_neighbors={cfg.k_neighbors}; this fold has {pos}. "
            "Lower resample.k_neighbors, use fewer folds, or choose resample.strategy=class_weight"
        )
    if pos / max(neg, 1) >= cfg.sampling_strategy:
        return Resampled(train, None, {**info, "note": "already at or above sampling_strategy; nothing synthesised"})
    x = train.gather()  # (n, L, F): SMOTE needs every training window at once
    n, length, f = x.shape
    sampler = SMOTE(sampling_strategy=cfg.sampling_strategy, k_neighbors=cfg.k_neighbors, random_state=seed)
    x_res, y_res = sampler.fit_resample(x.reshape(n, length * f), train.y)
    added = len(y_res) - n  # imbalanced-learn appends the synthetic samples after the originals
    last_seen = np.concatenate([train.last_seen, np.zeros(added, np.int8)])
    synthetic = np.concatenate([train.synthetic, np.ones(added, bool)])
    out = WindowSet.from_dense(x_res.reshape(-1, length, f), y_res, last_seen, synthetic)
    n_neg, n_pos = _counts(out.y)
    return Resampled(out, None, {**info, "synthetic": added, "negatives_after": n_neg, "positives_after": n_pos})
