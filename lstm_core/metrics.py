"""Scores for rare-event warnings: PR-AUC, MCC and friends, and the choice of the decision threshold.

One prediction rule holds everywhere: a window is flagged when ``score >= threshold``. The threshold is
chosen on a fold's validation windows and applied unchanged to its test windows.
"""
from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    matthews_corrcoef,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)

METRIC_NAMES = ("pr_auc", "roc_auc", "mcc", "f1", "precision", "recall", "brier", "accuracy")
THRESHOLD_METRICS = ("mcc", "f1", "episode_f1")  # episode_f1 needs row labels: lstm_core.evaluate passes them
DEFAULT_THRESHOLD = 0.5
# Vectorised MCC/F1 values that differ by less than this are the same value computed along different
# float paths; treating them as ties keeps the "most conservative best" rule deterministic.
_TIE_TOL = 1e-12


def _as_arrays(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true has {y.size} values but scores has {s.size}")
    if np.any((y != 0) & (y != 1)):
        raise ValueError("y_true must hold only 0 and 1")
    y = y.astype(np.int64)
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinite values")
    return y, s


def _counts_per_threshold(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, ...]:
    """Candidate thresholds (distinct scores, descending) and TP, FP, FN, TN of ``s >= candidate``."""
    order = np.argsort(-s, kind="stable")
    s_desc, y_desc = s[order], y[order]
    # The last position of each run of equal scores: ">= t" flags the whole run at once.
    last = np.flatnonzero(np.diff(s_desc) != 0)
    last = np.append(last, s_desc.size - 1)
    tp = np.cumsum(y_desc, dtype=np.float64)[last]
    fp = (last + 1).astype(np.float64) - tp
    pos, neg = float(y.sum()), float(y.size - y.sum())
    return s_desc[last], tp, fp, pos - tp, neg - fp


def _mcc(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, tn: np.ndarray) -> np.ndarray:
    # Floats, not ints: the product of four counts overflows int64 from about 55k windows on.
    denom = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    num = tp * tn - fp * fn
    # sklearn's convention: MCC is 0 when any marginal is empty.
    return np.divide(num, denom, out=np.zeros_like(num), where=denom > 0)


def _f1(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def choose_threshold(y_true: np.ndarray, scores: np.ndarray, metric: str = "mcc") -> float:
    """The score threshold that maximises ``metric`` (mcc or f1) on validation windows.

    Candidates are the distinct score values; among equally good ones the highest (fewest alarms) wins.
    If the windows hold a single class or a single score value every candidate is equally meaningless,
    so the neutral 0.5 is returned rather than an artefact of the validation slice.
    """
    if metric not in THRESHOLD_METRICS:
        raise ValueError(f"threshold metric {metric!r} is not one of {THRESHOLD_METRICS}")
    y, s = _as_arrays(y_true, scores)
    positives = int(y.sum())
    if positives == 0 or positives == y.size or np.ptp(s) == 0:
        return DEFAULT_THRESHOLD
    thresholds, tp, fp, fn, tn = _counts_per_threshold(y, s)
    # episode_f1 reaches here only without row labels (the final model's held-out slice): window f1 stands in
    values = _mcc(tp, fp, fn, tn) if metric == "mcc" else _f1(tp, fp, fn)
    # thresholds descend, so the first near-maximal candidate is the most conservative one
    best = int(np.flatnonzero(values >= values.max() - _TIE_TOL)[0])
    return float(thresholds[best])


def _single_class(y: np.ndarray) -> bool:
    return y.size == 0 or np.all(y == y[0])


def _threshold_free(y: np.ndarray, s: np.ndarray) -> dict[str, float]:
    """PR-AUC and ROC-AUC (undefined, so NaN, with one class) and the Brier score."""
    if _single_class(y):
        pr_auc = roc_auc = float("nan")
    else:
        pr_auc = float(average_precision_score(y, s))
        roc_auc = float(roc_auc_score(y, s))
    brier = float(brier_score_loss(y, s, labels=[0, 1])) if y.size else float("nan")
    return {"pr_auc": pr_auc, "roc_auc": roc_auc, "brier": brier}


def _hard(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Metrics of hard 0/1 predictions, 0 where a ratio has an empty denominator."""
    if y.size == 0:
        return {k: float("nan") for k in ("mcc", "f1", "precision", "recall", "accuracy")}
    with warnings.catch_warnings():
        # A fold whose windows and predictions are all one class has MCC 0 by convention; sklearn's
        # confusion matrix (which takes no labels= here) warns about its shape each time.
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        mcc = float(matthews_corrcoef(y, pred))
    return {
        "mcc": mcc,
        "f1": float(f1_score(y, pred, zero_division=0)),
        "precision": float(precision_score(y, pred, zero_division=0)),
        "recall": float(recall_score(y, pred, zero_division=0)),
        "accuracy": float(accuracy_score(y, pred)),
    }


def _counts(y: np.ndarray) -> dict[str, float]:
    n, positives = float(y.size), float(y.sum())
    return {"n": n, "positives": positives, "prevalence": positives / n if n else float("nan")}


def score_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Every metric in METRIC_NAMES for one set of windows, plus threshold, n, positives, prevalence."""
    y, s = _as_arrays(y_true, scores)
    pred = (s >= threshold).astype(np.int64)
    out = {**_threshold_free(y, s), **_hard(y, pred)}
    return {name: out[name] for name in METRIC_NAMES} | {"threshold": float(threshold), **_counts(y)}


def aggregate(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Mean and population std (ddof=0) across folds of each metric present, ignoring NaN folds."""
    out: dict[str, float] = {}
    for name in METRIC_NAMES:
        if not any(name in fold for fold in per_fold):
            continue
        values = np.array([fold.get(name, np.nan) for fold in per_fold], dtype=np.float64)
        if np.all(np.isnan(values)):  # e.g. ROC-AUC when every test fold held one class
            out[f"{name}_mean"] = out[f"{name}_std"] = float("nan")
            continue
        out[f"{name}_mean"] = float(np.nanmean(values))
        out[f"{name}_std"] = float(np.nanstd(values, ddof=0))
    return out


def pooled_metrics(
    y_true_list: list[np.ndarray], scores_list: list[np.ndarray], thresholds: list[float]
) -> dict[str, float]:
    """Metrics over the test windows of all folds together.

    Threshold-free metrics (PR-AUC, ROC-AUC, Brier) use the concatenated scores. Threshold metrics use
    the concatenated hard predictions, each fold flagged with its *own* validation threshold: that is
    what was deployed in each period, whereas one pooled threshold would be chosen with hindsight.
    No "threshold" key is returned, since there is one per fold.
    """
    if not len(y_true_list) == len(scores_list) == len(thresholds):
        raise ValueError("pooled_metrics needs one y_true, one scores array and one threshold per fold")
    if not y_true_list:
        raise ValueError("pooled_metrics needs at least one fold")
    pairs = [_as_arrays(y, s) for y, s in zip(y_true_list, scores_list, strict=True)]
    y = np.concatenate([p[0] for p in pairs])
    s = np.concatenate([p[1] for p in pairs])
    pred = np.concatenate([(ps >= t).astype(np.int64) for (_, ps), t in zip(pairs, thresholds, strict=True)])
    out = {**_threshold_free(y, s), **_hard(y, pred)}
    return {name: out[name] for name in METRIC_NAMES} | _counts(y)


def pr_curve_points(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) of sklearn's precision_recall_curve; both empty when there is no positive."""
    y, s = _as_arrays(y_true, scores)
    if not y.any():  # recall is 0/0 at every threshold: there is no curve to draw
        return np.zeros(0), np.zeros(0)
    precision, recall, _ = precision_recall_curve(y, s)
    return recall, precision
