"""Baselines that share the LSTM's fit/predict protocol, so one walk-forward evaluates any of them.

An LSTM earns its place only by beating these on the same test windows: the base rate, "what was last
seen", and two learned models on per-window summary statistics (last, mean, std, min, max, slope).
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from lstm_core.windows import WindowSet, drop_mapped_pages

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


def _summarise(x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """(B, L, F) windows -> (B, 6·F) statistics in ``dtype``, stat-major (all 'last', then all 'mean', ...)."""
    x = x.astype(dtype, copy=False)
    length = x.shape[1]
    centred = (np.arange(length, dtype=np.float64) - (length - 1) / 2).astype(dtype)  # (L,), sums to 0
    ss = float(centred @ centred)
    # Least-squares slope per step: sum(c·x)/sum(c²); a one-step window has no slope, so 0.
    slope = np.einsum("l,blf->bf", centred, x) / dtype(ss) if ss > 0 else np.zeros_like(x[:, 0])  # (B, F)
    stats = (x[:, -1], x.mean(axis=1), x.std(axis=1), x.min(axis=1), x.max(axis=1), slope)
    return np.concatenate(stats, axis=1).astype(dtype, copy=False)  # (B, 6F)


def summary_features(ws: WindowSet, chunk: int = 4096, dtype: type = np.float32,
                     store: type | None = None) -> np.ndarray:
    """Per-window summary statistics (n, 6·F) computed in ``dtype`` (float32: the rows' own precision, half the
    memory of float64), gathered ``chunk`` windows at a time to bound memory, and stored in ``store`` (default
    ``dtype``): float32 statistics stored as float64 are bit for bit what upcasting the float32 array gives,
    without ever holding both."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    out = np.empty((len(ws), len(SUMMARY_STATS) * ws.n_features), dtype=store or dtype)
    for start in range(0, len(ws), chunk):
        stop = min(start + chunk, len(ws))
        out[start:stop] = _summarise(ws.gather(slice(start, stop)), dtype)
    return out


def summary_feature_names(features: list[str]) -> list[str]:
    """Column names of summary_features, e.g. 's2__last', in the same stat-major order."""
    return [f"{feature}__{stat}" for stat in SUMMARY_STATS for feature in features]


def stratified_sample(y: np.ndarray, size: int | None, seed: int) -> np.ndarray | None:
    """Sorted indices of a stratified random sample of ``size`` of the labels ``y`` (None: keep them all).

    The sample keeps the base rate (to rounding) and both classes; a class with a single member is kept whole,
    where a plain stratified split would refuse."""
    if size is None or len(y) <= size:
        return None
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) > 1 and counts.min() < 2:
        rare = np.isin(y, classes[counts < 2])
        rest = np.flatnonzero(~rare)
        rng = np.random.default_rng(seed)
        keep = rng.choice(rest, size=max(0, size - int(rare.sum())), replace=False)
        return np.sort(np.concatenate([np.flatnonzero(rare), keep]))
    keep, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y if len(classes) > 1 else None,
                               random_state=seed)
    return np.sort(keep)


class SummaryCache:
    """Summary features computed once per window set and shared by the models that read them.

    One cache per fold: logistic and hgb then fit on the same training sample (each summarises it into its own
    array in the dtype its classifier fits in, which its fit consumes) and score the same validation, calibration and test windows without
    summarising any of them twice. Window sets are recognised by identity (the cache keeps a reference, so an
    id is never reused while it lives); drop the cache with the fold.

    The cache holds at most ``max_bytes`` of features. A window set whose features would not fit is not held:
    each model then summarises it chunk by chunk as it scores (the same probabilities, computed once per model
    instead of once per fold). At 10M rows a fold's 3.3M test windows take 2.4 GiB of features and its 0.67M
    validation windows 488 MiB: neither fits the 256 MiB, so neither sits beside hgb's float64 training
    sample while it fits. At 512 MiB the validation features were held, and were 0.45 GiB of the 10M-row flow's
    peak (benchmarks/README.md); every bundled set's window sets still fit.
    """

    def __init__(self, chunk: int = 4096, max_bytes: int = 1 << 28) -> None:
        self.chunk = chunk
        self.max_bytes = max_bytes
        self.held_bytes = 0
        self._features: dict[int, tuple[WindowSet, np.ndarray]] = {}
        self._samples: dict[tuple[int, int | None, int], tuple[WindowSet, WindowSet]] = {}

    @staticmethod
    def nbytes(ws: WindowSet) -> int:
        """Bytes of ``ws``'s float32 summary features."""
        return len(ws) * len(SUMMARY_STATS) * ws.n_features * np.dtype(np.float32).itemsize

    def shared(self, ws: WindowSet) -> np.ndarray | None:
        """(n, 6·F) float32 summary features of ``ws``: held after the first use if they fit the budget, else
        None (the caller summarises chunk by chunk)."""
        hit = self._features.get(id(ws))
        if hit is not None and hit[0] is ws:
            return hit[1]
        size = self.nbytes(ws)
        if self.held_bytes + size > self.max_bytes:
            return None
        self._features[id(ws)] = (ws, summary_features(ws, self.chunk))
        self.held_bytes += size
        return self._features[id(ws)][1]

    def features(self, ws: WindowSet) -> np.ndarray:
        """(n, 6·F) float32 summary features of ``ws``: the held ones, or computed now (and held if they fit)."""
        held = self.shared(ws)
        return held if held is not None else summary_features(ws, self.chunk)

    def sample(self, train: WindowSet, size: int | None, seed: int) -> WindowSet:
        """The stratified training sample (the same object for the same arguments, so its features are shared)."""
        key = (id(train), size, seed)
        hit = self._samples.get(key)
        if hit is None or hit[0] is not train:
            keep = stratified_sample(train.y, size, seed)
            hit = (train, train if keep is None else train.subset(keep))
            self._samples[key] = hit
        return hit[1]


class _SummaryBaseline:
    """A scikit-learn classifier on summary features; falls back to the base rate on one-class training.

    ``max_train_windows`` bounds memory and time on large data: the classifier is fitted on a stratified random
    sample of that many training windows (the base rate is still that of all of them). ``cache`` (a
    SummaryCache shared with other summary models of the same fold) supplies features computed once; without
    one, features are computed chunk by chunk and dropped. Either way the probabilities are the same.
    """

    name = "summary"
    predict_chunk = 65_536
    fit_dtype: type = np.float32  # what the classifier fits in (lbfgs keeps float32; boosting converts to float64)

    def __init__(self, seed: int = 0, max_train_windows: int | None = None, cache: SummaryCache | None = None) -> None:
        self.seed = seed
        self.max_train_windows = max_train_windows
        self.cache = cache
        self.degenerate = False
        self.fitted_on = 0
        self.rate_: float | None = None
        self.model_: Pipeline | HistGradientBoostingClassifier | None = None

    def _make(self) -> Pipeline | HistGradientBoostingClassifier:
        raise NotImplementedError

    def _sample(self, train: WindowSet) -> WindowSet:
        if self.cache is not None:
            return self.cache.sample(train, self.max_train_windows, self.seed)
        keep = stratified_sample(train.y, self.max_train_windows, self.seed)
        return train if keep is None else train.subset(keep)

    def _features(self, ws: WindowSet) -> np.ndarray:
        return self.cache.features(ws) if self.cache is not None else summary_features(ws)

    def _fit_features(self, sample: WindowSet) -> np.ndarray:
        """The training sample's features in ``fit_dtype``, the one the classifier fits in: float32 for the
        logistic regression (scikit-learn's lbfgs keeps it), float64 for boosting (which converts every input),
        stored straight from the float32 statistics (bit for bit what upcasting them gives). Each model
        summarises the sample itself and owns the array, so a fit never holds a float32 copy beside a float64
        one (at 10M rows, a 500k-window sample is 0.37 and 0.73 GiB), and the cache never holds the sample: no
        one reads it after the fit."""
        return summary_features(sample, store=self.fit_dtype)

    def _fit_model(self, model, x: np.ndarray, y: np.ndarray, val: WindowSet | None, rows: np.ndarray,
                   **fit_params: Any):
        """Fit ``model`` on the sample's features ``x``. The fit reads ``x`` only: ``rows`` (the windows' rows),
        when mapped from a file, go back to the page cache meanwhile (at 10M rows, 1 GiB beside hgb's 0.73 GiB
        float64 sample), and scoring reads them again."""
        drop_mapped_pages(rows)
        return model.fit(x, y, **fit_params)

    def fit(self, train: WindowSet, val: WindowSet | None = None) -> _SummaryBaseline:
        """Fit on (a sample of) the training windows; ``val`` is read only by models that stop early."""
        self.rate_ = _train_rate(train)
        # sklearn refuses one-class targets; a fold without events can still be scored by its rate.
        self.degenerate = bool(np.all(train.y == train.y[0]))
        sample = self._sample(train)
        self.fitted_on = len(sample)
        self.model_ = None if self.degenerate else self._fit_model(self._make(), self._fit_features(sample),
                                                                   sample.y, val, train.rows)
        return self

    def predict_proba(self, windows: WindowSet) -> np.ndarray:
        if self.rate_ is None:
            raise RuntimeError(f"{type(self).__name__}.predict_proba called before fit")
        if self.model_ is None:
            return np.full(len(windows), self.rate_, dtype=np.float64)
        positive = list(self.model_.classes_).index(1)
        shared = self.cache.shared(windows) if self.cache is not None else None
        out = np.zeros(len(windows), dtype=np.float64)
        for start in range(0, len(windows), self.predict_chunk):
            stop = min(start + self.predict_chunk, len(windows))
            x = shared[start:stop] if shared is not None else summary_features(windows.subset(np.arange(start, stop)))
            out[start:stop] = self.model_.predict_proba(x)[:, positive]
        return np.clip(out, 0.0, 1.0)


class LogisticBaseline(_SummaryBaseline):
    """Class-balanced logistic regression on standardised summary features."""

    name = "logistic"

    def _make(self) -> Pipeline:
        return make_pipeline(
            StandardScaler(),
            LogisticRegression(max_iter=1000, class_weight="balanced", random_state=self.seed),
        )

    def _fit_model(self, model: Pipeline, x: np.ndarray, y: np.ndarray, val: WindowSet | None,
                   rows: np.ndarray) -> Pipeline:
        """``x`` is this fit's own array: it is standardised where it lies, not into a second one. Scoring copies
        again, since it reads the cache's shared features."""
        model.set_params(standardscaler__copy=False)
        super()._fit_model(model, x, y, val, rows)
        return model.set_params(standardscaler__copy=True)


class HistGBBaseline(_SummaryBaseline):
    """Class-balanced histogram gradient boosting on summary features, stopped early like the LSTM.

    Boosting stops when the class-balanced log loss on the fold's validation windows has not improved for
    ``patience`` iterations (``max_iter`` at most). Without usable validation windows (none, or one class), or
    on a scikit-learn too old to take them (before 1.7), scikit-learn holds out a stratified
    ``validation_fraction`` of the training sample instead. The patience is long because the balanced
    probabilities keep ranking better (PR-AUC) for a while after their log loss has stopped improving.

    The validation windows it stops on are a stratified sample of at most ``stopping_windows`` (all of them when
    there are fewer, as on every bundled set): scikit-learn copies them to float64, which at 1.3M validation
    windows of 32 features was 2 GB beside their float32 features. The early-stopping loss of a stratified
    sample of that size is what all of them give to well under the gain of one boosting round
    (benchmarks/README.md, "hgb's early-stopping sample").
    """

    name = "hgb"
    fit_dtype = np.float64
    max_iter = 200
    patience = 30
    validation_fraction = 0.1
    stopping_windows = 100_000

    def _make(self) -> HistGradientBoostingClassifier:
        return HistGradientBoostingClassifier(
            max_iter=self.max_iter, learning_rate=0.1, early_stopping=True, n_iter_no_change=self.patience,
            validation_fraction=self.validation_fraction, scoring="loss", class_weight="balanced",
            random_state=self.seed,
        )

    def _fit_model(self, model: HistGradientBoostingClassifier, x: np.ndarray, y: np.ndarray,
                   val: WindowSet | None, rows: np.ndarray) -> HistGradientBoostingClassifier:
        if val is None or len(np.unique(val.y)) < 2 or not _fit_takes_val():
            return super()._fit_model(model, x, y, val, rows)
        classes, counts = np.unique(y, return_counts=True)
        weight = dict(zip(classes.tolist(), (len(y) / (len(classes) * counts)).tolist(), strict=True))
        # the validation loss weighs the classes as training does (class_weight is not applied to X_val)
        x_val, y_val = self._stopping_windows(val)
        w_val = np.array([weight.get(c, 0.0) for c in (0, 1)])[y_val.astype(np.int64)]
        return super()._fit_model(model, x, y, val, rows, X_val=x_val, y_val=y_val, sample_weight_val=w_val)

    def _stopping_windows(self, val: WindowSet) -> tuple[np.ndarray, np.ndarray]:
        """Features and labels of the validation windows early stopping reads: a stratified sample of at most
        ``stopping_windows`` of them, cut from the fold's shared features when the cache holds them."""
        keep = stratified_sample(val.y, self.stopping_windows, self.seed)
        if keep is None:
            return self._features(val), val.y
        held = self.cache.shared(val) if self.cache is not None else None
        return (held[keep] if held is not None else summary_features(val.subset(keep))), val.y[keep]


@functools.cache
def _fit_takes_val() -> bool:
    """Whether this scikit-learn's HistGradientBoostingClassifier.fit takes X_val (1.7 and later); asked once,
    on first use rather than at import."""
    return "X_val" in inspect.signature(HistGradientBoostingClassifier.fit).parameters


BASELINES: dict[str, Callable[..., WindowModel]] = {
    "prior": PriorBaseline,
    "persistence": PersistenceBaseline,
    "logistic": LogisticBaseline,
    "hgb": HistGBBaseline,
}


def make_baseline(name: str, seed: int, max_train_windows: int | None = None,
                  cache: SummaryCache | None = None) -> WindowModel:
    """A fresh, unfitted baseline by its config name; learned ones fit on at most ``max_train_windows`` and read
    their summary features from ``cache`` when given (share one per fold)."""
    if name not in BASELINES:
        raise ValueError(f"unknown baseline {name!r}; valid choices: {', '.join(BASELINES)}")
    cls = BASELINES[name]
    if isinstance(cls, type) and issubclass(cls, _SummaryBaseline):
        return cls(seed=seed, max_train_windows=max_train_windows, cache=cache)
    return cls(seed=seed)
