"""Baselines that share the LSTM's fit/predict protocol, so one walk-forward evaluates any of them.

An LSTM earns its place only by beating these on the same test windows: the base rate, "what was last
seen", and two learned models on per-window summary statistics (last, mean, std, min, max, slope).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from lstm_core.windows import WindowSet

SUMMARY_STATS = ("last", "mean", "std", "min", "max", "slope")


@runtime_checkable
class WindowModel(Protocol):
    """Anything the walk-forward can fit on training windows and score on test windows."""

    name: str

    def fit(self, train: WindowSet, val: WindowSet | None = None) -> WindowModel: ...

    def predict_proba(self, windows: WindowSet) -> np.ndarray: ...  # (n,) float64 in [0, 1]


def _train_rate(train: WindowSet) -> float:
    if len(train) == 0:
        raise ValueError("cannot fit a baseline on zero training windows")
    return float(np.mean(train.y))


class PriorBaseline:
    """The training base rate for every window: the score any useful model must beat on PR-AUC."""

    name = "prior"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed  # unused; every baseline takes one so make_baseline can build any of them
        self.rate_: float | None = None

    def fit(self, train: WindowSet, val: WindowSet | None = None) -> PriorBaseline:
        self.rate_ = _train_rate(train)
        return self

    def predict_proba(self, windows: WindowSet) -> np.ndarray:
        if self.rate_ is None:
            raise RuntimeError("PriorBaseline.predict_proba called before fit")
        return np.full(len(windows), self.rate_, dtype=np.float64)


class PersistenceBaseline:
    """The latest label/event known when the window closes (``WindowSet.last_seen``): "as it was".

    Which label is known depends on ``data.label_delay``. A window with no known label (``last_seen`` -1: the
    labels arrive never) gets the training base rate: persistence then is the prior, not a model that drops out.
    """

    name = "persistence"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.rate_: float | None = None

    def fit(self, train: WindowSet, val: WindowSet | None = None) -> PersistenceBaseline:
        self.rate_ = float(np.mean(train.y)) if len(train) else None  # only read where no label is known
        return self

    def predict_proba(self, windows: WindowSet) -> np.ndarray:
        seen = windows.last_seen.astype(np.float64)
        unknown = windows.last_seen < 0
        if unknown.any():
            if self.rate_ is None:
                raise RuntimeError("PersistenceBaseline: no label is known for some windows and it was not fitted "
                                   "on training windows to fall back to their base rate")
            seen[unknown] = self.rate_
        return seen


def _summarise(x: np.ndarray) -> np.ndarray:
    """(B, L, F) windows -> (B, 6·F) statistics, stat-major (all 'last', then all 'mean', ...)."""
    x = x.astype(np.float64, copy=False)
    length = x.shape[1]
    centred = np.arange(length, dtype=np.float64) - (length - 1) / 2  # (L,), sums to 0
    ss = float(centred @ centred)
    # Least-squares slope per step: sum(c·x)/sum(c²); a one-step window has no slope, so 0.
    slope = np.einsum("l,blf->bf", centred, x) / ss if ss > 0 else np.zeros_like(x[:, 0])  # (B, F)
    stats = (x[:, -1], x.mean(axis=1), x.std(axis=1), x.min(axis=1), x.max(axis=1), slope)
    return np.concatenate(stats, axis=1)  # (B, 6F)


def summary_features(ws: WindowSet, chunk: int = 4096) -> np.ndarray:
    """Per-window summary statistics (n, 6·F), gathered ``chunk`` windows at a time to bound memory."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    out = np.empty((len(ws), len(SUMMARY_STATS) * ws.n_features), dtype=np.float64)
    for start in range(0, len(ws), chunk):
        stop = min(start + chunk, len(ws))
        out[start:stop] = _summarise(ws.gather(slice(start, stop)))
    return out


def summary_feature_names(features: list[str]) -> list[str]:
    """Column names of summary_features, e.g. 's2__last', in the same stat-major order."""
    return [f"{feature}__{stat}" for stat in SUMMARY_STATS for feature in features]


class _SummaryBaseline:
    """A scikit-learn classifier on summary features; falls back to the base rate on one-class training.

    ``max_train_windows`` bounds memory and time on large data: the classifier is fitted on a stratified random
    sample of that many training windows (the base rate is still that of all of them). Scoring runs in chunks.
    """

    name = "summary"
    predict_chunk = 65_536

    def __init__(self, seed: int = 0, max_train_windows: int | None = None) -> None:
        self.seed = seed
        self.max_train_windows = max_train_windows
        self.degenerate = False
        self.fitted_on = 0
        self.rate_: float | None = None
        self.model_: Pipeline | HistGradientBoostingClassifier | None = None

    def _make(self) -> Pipeline | HistGradientBoostingClassifier:
        raise NotImplementedError

    def _sample(self, train: WindowSet) -> WindowSet:
        if self.max_train_windows is None or len(train) <= self.max_train_windows:
            return train
        keep, _ = train_test_split(np.arange(len(train)), train_size=self.max_train_windows, stratify=train.y,
                                   random_state=self.seed)
        return train.subset(np.sort(keep))

    def fit(self, train: WindowSet, val: WindowSet | None = None) -> _SummaryBaseline:
        """Fit on the training windows; ``val`` is accepted for the protocol but unused (no early stop)."""
        self.rate_ = _train_rate(train)
        # sklearn refuses one-class targets; a fold without events can still be scored by its rate.
        self.degenerate = bool(np.all(train.y == train.y[0]))
        sample = self._sample(train)
        self.fitted_on = len(sample)
        self.model_ = None if self.degenerate else self._make().fit(summary_features(sample), sample.y)
        return self

    def predict_proba(self, windows: WindowSet) -> np.ndarray:
        if self.rate_ is None:
            raise RuntimeError(f"{type(self).__name__}.predict_proba called before fit")
        if self.model_ is None:
            return np.full(len(windows), self.rate_, dtype=np.float64)
        positive = list(self.model_.classes_).index(1)
        out = np.zeros(len(windows), dtype=np.float64)
        for start in range(0, len(windows), self.predict_chunk):
            part = windows.subset(np.arange(start, min(start + self.predict_chunk, len(windows))))
            out[start:start + len(part)] = self.model_.predict_proba(summary_features(part))[:, positive]
        return np.clip(out, 0.0, 1.0)


class LogisticBaseline(_SummaryBaseline):
    """Class-balanced logistic regression on standardised summary features."""

    name = "logistic"

    def _make(self) -> Pipeline:
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(max_iter=1000, class_weight="balanced", random_state=self.seed),
        )


class HistGBBaseline(_SummaryBaseline):
    """Class-balanced histogram gradient boosting on summary features."""

    name = "hgb"

    def _make(self) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.1, early_stopping=False, class_weight="balanced",
            random_state=self.seed,
        )


BASELINES: dict[str, Callable[..., WindowModel]] = {
    "prior": PriorBaseline,
    "persistence": PersistenceBaseline,
    "logistic": LogisticBaseline,
    "hgb": HistGBBaseline,
}


def make_baseline(name: str, seed: int, max_train_windows: int | None = None) -> WindowModel:
    """A fresh, unfitted baseline by its config name; learned ones fit on at most ``max_train_windows``."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid choices: {', '.join(BASELINES)}")
    cls = BASELINES[name]
    if isinstance(cls, type) and issubclass(cls, _SummaryBaseline):
        return cls(seed=seed, max_train_windows=max_train_windows)
    return cls(seed=seed)
