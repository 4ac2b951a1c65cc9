"""Imbalance strategies: exact counts and weights, marked synthetic windows, and training-part-only use."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_core.config import DataConfig, ResampleConfig, SplitConfig
from lstm_core.data import DataError, resolve_spec, to_series
from lstm_core.resample import resample
from lstm_core.splits import fold_windows, make_folds
from lstm_core.windows import WindowSet, make_windows


def eq(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def dense(neg: int, pos: int, seed: int = 0, length: int = 2, f: int = 2) -> WindowSet:
    """neg negatives (around 0) then pos positives (around 5), with last_seen = 1 on every third window."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(neg + pos, length, f)).astype(np.float32)
    x[neg:] += 5.0
    y = np.r_[np.zeros(neg), np.ones(pos)]
    return WindowSet.from_dense(x, y, last_seen=(np.arange(neg + pos) % 3 == 0).astype(np.int8))


def test_none_returns_the_same_windows() -> None:
    ws = dense(10, 2)
    res = resample(ws, ResampleConfig(strategy="none"), seed=0)
    assert res.windows is ws and res.pos_weight is None
    assert res.info == {"strategy": "none", "negatives_before": 10, "positives_before": 2}


@pytest.mark.parametrize(("neg", "pos", "weight"), [(8, 2, 4.0), (7, 3, 7 / 3), (5, 5, 1.0)])
def test_class_weight_is_neg_over_pos(neg: int, pos: int, weight: float) -> None:
    ws = dense(neg, pos)
    res = resample(ws, ResampleConfig(strategy="class_weight"), seed=0)
    assert res.windows is ws  # windows untouched; the loss carries the weight
    assert res.pos_weight == weight  # exactly neg / pos
    assert res.info["pos_weight"] == weight


# imbalanced-learn's float rule: synthesise int(ratio · n_majority − n_minority) minority samples
@pytest.mark.parametrize(
    ("neg", "pos", "ratio", "added"),
    [
        (20, 6, 0.5, 4),  # 0.5·20 − 6 = 4
        (21, 6, 0.5, 4),  # 0.5·21 − 6 = 4.5 → int → 4 (truncated, not rounded)
        (40, 6, 1.0, 34),  # balance: 40 − 6
        (30, 6, 0.25, 1),  # 7.5 − 6 = 1.5 → 1
    ],
)
def test_smote_reaches_the_configured_ratio(neg: int, pos: int, ratio: float, added: int) -> None:
    ws = dense(neg, pos)
    res = resample(ws, ResampleConfig(strategy="smote", sampling_strategy=ratio, k_neighbors=5), seed=3)
    out = res.windows
    n = neg + pos
    assert len(out) == n + added
    assert int(out.y.sum()) == pos + added and int((out.y == 0).sum()) == neg
    assert res.pos_weight is None
    assert res.info["synthetic"] == added and res.info["positives_after"] == pos + added
    # the originals come first, unchanged, and only the appended windows are marked synthetic
    eq(out.synthetic, [False] * n + [True] * added)
    eq(out.gather()[:n], ws.gather())
    eq(out.y[:n], ws.y)
    eq(out.last_seen, np.r_[ws.last_seen, np.zeros(added, np.int8)])
    assert out.length == ws.length and out.n_features == ws.n_features
    # synthetic windows interpolate between positives: inside the positives' bounding box (all ≥ ~5 − 4σ)
    pos_x = ws.gather()[ws.y == 1]
    new = out.gather()[n:]
    assert np.all(new >= pos_x.min(axis=0) - 1e-5) and np.all(new <= pos_x.max(axis=0) + 1e-5)
    eq(out.y[n:], np.ones(added))


def test_smote_already_at_ratio_synthesises_nothing() -> None:
    ws = dense(10, 6)  # 6/10 = 0.6 ≥ 0.5
    res = resample(ws, ResampleConfig(strategy="smote", sampling_strategy=0.5, k_neighbors=5), seed=0)
    assert res.windows is ws and "nothing synthesised" in res.info["note"]


def test_smote_is_deterministic_under_a_seed() -> None:
    ws = dense(30, 8)
    cfg = ResampleConfig(strategy="smote", sampling_strategy=0.8, k_neighbors=3)
    a, b, c = resample(ws, cfg, seed=1).windows, resample(ws, cfg, seed=1).windows, resample(ws, cfg, seed=2).windows
    eq(a.rows, b.rows)
    eq(a.y, b.y)
    eq(a.synthetic, b.synthetic)
    assert a.rows.shape == c.rows.shape
    assert not np.array_equal(a.gather()[38:], c.gather()[38:])  # other seed → other synthetic windows
    eq(a.gather()[:38], c.gather()[:38])  # but the same originals


def test_smote_needs_more_positives_than_k_neighbors() -> None:
    with pytest.raises(DataError, match=r"more positive training windows than k_neighbors=5; this fold has 5"):
        resample(dense(20, 5), ResampleConfig(strategy="smote", k_neighbors=5), seed=0)
    # 6 = k + 1 is enough
    assert resample(dense(20, 6), ResampleConfig(strategy="smote", k_neighbors=5), seed=0).info["synthetic"] == 4


@pytest.mark.parametrize("strategy", ["class_weight", "smote"])
def test_no_positives_is_a_clear_error(strategy: str) -> None:
    with pytest.raises(DataError, match=f"resample.strategy={strategy} needs positives.*it has none"):
        resample(dense(10, 0), ResampleConfig(strategy=strategy), seed=0)


def test_resampling_touches_the_training_part_only() -> None:
    rng = np.random.default_rng(5)
    n = 400
    events = (rng.random(n) < 0.15).astype(int)
    df = pd.DataFrame({"time": range(n), "a": rng.normal(size=n), "b": rng.normal(size=n), "event": events})
    s = to_series(df, resolve_spec(df, DataConfig(event_col="event", horizon=2)))
    idx = make_windows(s, 4)
    fold = make_folds(s, idx, SplitConfig(folds=2))[1]
    fw = fold_windows(s, idx, fold, 4)
    before = {p: (getattr(fw, p), getattr(fw, p).gather().copy(), getattr(fw, p).y.copy()) for p in ("val", "test")}
    rows_before = fw.train.rows.copy()
    res = resample(fw.train, ResampleConfig(strategy="smote", sampling_strategy=1.0, k_neighbors=3), seed=0)
    n_train = len(fw.train)
    assert res.windows.synthetic.sum() == res.info["synthetic"] > 0
    eq(res.windows.gather()[:n_train], fw.train.gather())  # the real training windows are all still there
    for p, (obj, x, y) in before.items():
        ws = getattr(fw, p)
        assert ws is obj  # the same WindowSet objects ...
        assert not ws.synthetic.any()  # ... with no synthetic window ...
        eq(ws.gather(), x)  # ... and unchanged values and targets
        eq(ws.y, y)
        assert not np.shares_memory(ws.rows, res.windows.rows)
    eq(fw.train.rows, rows_before)  # the fold's scaled rows were not modified in place
    assert len(fw.train) == n_train and not fw.train.synthetic.any()
