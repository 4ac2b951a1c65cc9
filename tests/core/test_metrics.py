"""Metrics and threshold choice against numbers worked out by hand, and against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import f1_score, matthews_corrcoef

from lstm_core.metrics import (
    METRIC_NAMES,
    aggregate,
    choose_threshold,
    pooled_metrics,
    pr_curve_points,
    score_metrics,
)

# The worked example. Sorted by score: 0.8 (pos), 0.4 (neg), 0.35 (pos), 0.1 (neg).
Y = np.array([0, 0, 1, 1])
S = np.array([0.1, 0.4, 0.35, 0.8])
INV_SQRT3 = 1 / math.sqrt(3)


def test_worked_example_threshold_free() -> None:
    m = score_metrics(Y, S, threshold=0.5)
    # AP = sum over positives of (recall step) * precision: 0.5 * 1 + 0.5 * 2/3
    assert m["pr_auc"] == pytest.approx(0.5 + 1 / 3)
    # 3 of the 4 (positive, negative) pairs are ordered correctly: only 0.35 < 0.4 is not
    assert m["roc_auc"] == pytest.approx(0.75)
    # (0.1² + 0.4² + 0.65² + 0.2²) / 4
    assert m["brier"] == pytest.approx((0.01 + 0.16 + 0.4225 + 0.04) / 4)
    assert (m["n"], m["positives"], m["prevalence"], m["threshold"]) == (4.0, 2.0, 0.5, 0.5)
    assert set(METRIC_NAMES) <= set(m)


def test_mcc_threshold_ties_pick_the_highest() -> None:
    # t=0.8: TP1 FP0 FN1 TN2 -> 2/sqrt(1·2·2·3) = 1/√3;  t=0.4: TP1 FP1 FN1 TN1 -> 0
    # t=0.35: TP2 FP1 FN0 TN1 -> 2/sqrt(3·2·1·2) = 1/√3; t=0.1: all flagged -> 0
    # 0.8 and 0.35 tie; the conservative (higher) one wins.
    t = choose_threshold(Y, S, "mcc")
    assert t == 0.8 and type(t) is float
    m = score_metrics(Y, S, t)
    assert m["mcc"] == pytest.approx(INV_SQRT3)
    assert (m["precision"], m["recall"], m["accuracy"]) == (1.0, 0.5, 0.75)
    assert m["f1"] == pytest.approx(2 / 3)


def test_f1_threshold() -> None:
    # F1 = 2TP/(2TP+FP+FN): t=0.8 -> 2/3, t=0.4 -> 1/2, t=0.35 -> 4/5, t=0.1 -> 2/3
    assert choose_threshold(Y, S, "f1") == 0.35
    assert score_metrics(Y, S, 0.35)["f1"] == pytest.approx(0.8)


def test_equal_scores_are_flagged_together() -> None:
    # The positive and the negative at 0.6 fall on the same side of any threshold: ">= 0.6" gives
    # TP2 FP1 (MCC 1/√3), never the perfect TP2 FP0 a position-by-position sweep would report.
    y, s = np.array([0, 1, 0, 1]), np.array([0.2, 0.6, 0.6, 0.9])
    assert choose_threshold(y, s) == 0.9
    assert score_metrics(y, s, 0.6)["mcc"] == pytest.approx(INV_SQRT3)


def test_prediction_rule_is_greater_or_equal() -> None:
    m = score_metrics(np.array([0, 1]), np.array([0.3, 0.7]), threshold=0.7)
    assert (m["recall"], m["precision"], m["mcc"]) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize(
    ("y", "s"),
    [([0, 0, 0], [0.1, 0.5, 0.9]), ([1, 1], [0.2, 0.3]), ([0, 1, 1], [0.4, 0.4, 0.4]), ([], [])],
)
def test_degenerate_threshold_is_half(y: list[int], s: list[float]) -> None:
    assert choose_threshold(np.array(y), np.array(s)) == 0.5


@pytest.mark.filterwarnings("error")
def test_single_class_gives_nan_aucs_without_warnings() -> None:
    m = score_metrics(np.array([0, 0, 0]), np.array([0.1, 0.6, 0.2]), 0.5)
    assert math.isnan(m["pr_auc"]) and math.isnan(m["roc_auc"])
    # one false alarm out of three, no positives to find
    assert (m["accuracy"], m["precision"], m["recall"], m["mcc"]) == (pytest.approx(2 / 3), 0.0, 0.0, 0.0)
    assert m["brier"] == pytest.approx((0.01 + 0.36 + 0.04) / 3)
    assert m["prevalence"] == 0.0


def test_bad_inputs_raise() -> None:
    with pytest.raises(ValueError, match="mcc"):
        choose_threshold(Y, S, "accuracy")
    with pytest.raises(ValueError, match="0 and 1"):
        score_metrics(np.array([0, 2]), np.array([0.1, 0.2]), 0.5)
    with pytest.raises(ValueError, match="NaN"):
        choose_threshold(np.array([0, 1]), np.array([0.1, np.nan]))


def test_aggregate_by_hand() -> None:
    folds = [
        {"mcc": 0.2, "f1": 1.0, "roc_auc": float("nan"), "threshold": 0.3, "n": 10.0},
        {"mcc": 0.4, "f1": 3.0, "roc_auc": float("nan")},
        {"mcc": float("nan"), "f1": 2.0, "roc_auc": float("nan")},
    ]
    agg = aggregate(folds)
    assert agg["mcc_mean"] == pytest.approx(0.3) and agg["mcc_std"] == pytest.approx(0.1)  # NaN fold skipped
    assert agg["f1_mean"] == pytest.approx(2.0) and agg["f1_std"] == pytest.approx(math.sqrt(2 / 3))  # ddof=0
    assert math.isnan(agg["roc_auc_mean"]) and math.isnan(agg["roc_auc_std"])
    assert set(agg) == {"mcc_mean", "mcc_std", "f1_mean", "f1_std", "roc_auc_mean", "roc_auc_std"}


def test_pooled_uses_each_folds_own_threshold() -> None:
    ys = [np.array([0, 1]), np.array([0, 1])]
    ss = [np.array([0.2, 0.3]), np.array([0.7, 0.8])]
    pooled = pooled_metrics(ys, ss, [0.3, 0.8])
    # Each fold's own threshold separates it perfectly.
    assert (pooled["mcc"], pooled["f1"], pooled["precision"], pooled["accuracy"]) == (1.0, 1.0, 1.0, 1.0)
    # One threshold over the concatenation could not: 0.3 flags the 0.7 negative, 0.8 misses 0.3.
    single = score_metrics(np.concatenate(ys), np.concatenate(ss), 0.3)
    assert single["precision"] == pytest.approx(2 / 3) and single["mcc"] < 1.0
    # Threshold-free metrics see the concatenated scores .2(0) .3(1) .7(0) .8(1): the 0.3 < 0.7 pair is wrong.
    assert pooled["roc_auc"] == pytest.approx(0.75)
    assert pooled["pr_auc"] == pytest.approx(0.5 + 1 / 3)
    assert pooled["brier"] == pytest.approx((0.04 + 0.49 + 0.49 + 0.04) / 4)
    assert (pooled["n"], pooled["positives"]) == (4.0, 2.0)
    with pytest.raises(ValueError):
        pooled_metrics(ys, ss, [0.3])


def test_pr_curve_points() -> None:
    recall, precision = pr_curve_points(Y, S)
    # From the highest threshold down to the lowest, then sklearn's closing (recall 0, precision 1).
    np.testing.assert_allclose(recall, [1.0, 1.0, 0.5, 0.5, 0.0])
    np.testing.assert_allclose(precision, [0.5, 2 / 3, 0.5, 1.0, 1.0])
    empty = pr_curve_points(np.array([0, 0]), np.array([0.1, 0.2]))
    assert empty[0].size == 0 and empty[1].size == 0


def _brute_force(y: np.ndarray, s: np.ndarray, score) -> float:
    """The highest distinct score whose metric equals the best one, by sklearn, one candidate at a time."""
    candidates = np.unique(s)[::-1]
    values = np.array([score(y, (s >= t).astype(int)) for t in candidates])
    return float(candidates[np.flatnonzero(values >= values.max() - 1e-12)[0]])


@pytest.mark.parametrize(
    ("metric", "cases", "score"),
    [("mcc", 200, matthews_corrcoef), ("f1", 30, lambda y, p: f1_score(y, p, zero_division=0))],
)
def test_choose_threshold_matches_brute_force(metric: str, cases: int, score) -> None:
    rng = np.random.default_rng(20240601)
    checked = 0
    for _ in range(cases):
        n = int(rng.integers(2, 40))
        y = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(int)
        s = np.round(rng.random(n) * 5) / 5  # six possible scores: ties between windows are common
        if y.min() == y.max() or np.ptp(s) == 0:
            assert choose_threshold(y, s, metric) == 0.5
            continue
        assert choose_threshold(y, s, metric) == _brute_force(y, s, score)
        checked += 1
    assert checked > 0.8 * cases


def test_choose_threshold_is_vectorised_on_large_sets() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(200_000) < 0.01).astype(np.int8)
    s = np.clip(rng.normal(0.3 + 0.3 * y, 0.1), 0, 1)
    t = choose_threshold(y, s)  # a per-candidate sklearn loop would take minutes here
    assert 0.3 < t < 0.9
    # int64 products of the four counts would overflow at this size; the float MCC stays in [-1, 1]
    assert -1.0 <= score_metrics(y, s, t)["mcc"] <= 1.0
