"""Baselines: hand-computed summary features, the shared protocol, and learning a planted pattern."""

from __future__ import annotations

import numpy as np
import pytest

from lstm_core.baselines import (
    BASELINES,
    HistGBBaseline,
    LogisticBaseline,
    PersistenceBaseline,
    PriorBaseline,
    WindowModel,
    make_baseline,
    summary_feature_names,
    summary_features,
)
from lstm_core.metrics import score_metrics
from lstm_core.windows import WindowSet


def test_summary_features_of_one_window_by_hand() -> None:
    ws = WindowSet.from_dense(np.array([[[1.0], [2.0], [4.0]]]), y=[1])  # (1, L=3, F=1)
    feats = summary_features(ws)
    # centred steps (-1, 0, 1): slope = (-1·1 + 0·2 + 1·4) / 2 = 1.5
    std = np.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 3)
    np.testing.assert_allclose(feats, [[4.0, 7 / 3, std, 1.0, 4.0, 1.5]])


def test_summary_columns_are_stat_major() -> None:
    # feature a rises 0,1,2 and feature b is constant 5
    x = np.array([[[0.0, 5.0], [1.0, 5.0], [2.0, 5.0]]])
    feats = summary_features(WindowSet.from_dense(x, y=[0]))
    names = summary_feature_names(["a", "b"])
    assert names[:3] == ["a__last", "b__last", "a__mean"] and names[-1] == "b__slope"
    got = dict(zip(names, feats[0], strict=True))
    assert got["a__last"] == 2.0 and got["b__last"] == 5.0
    assert got["a__slope"] == pytest.approx(1.0) and got["b__slope"] == 0.0 and got["b__std"] == 0.0


def test_one_step_windows_have_zero_slope() -> None:
    feats = summary_features(WindowSet.from_dense(np.array([[[3.0]], [[7.0]]]), y=[0, 1]))
    np.testing.assert_array_equal(feats[:, 5], [0.0, 0.0])
    np.testing.assert_array_equal(feats[:, 0], [3.0, 7.0])


def test_chunking_does_not_change_features() -> None:
    rng = np.random.default_rng(1)
    ws = WindowSet.from_dense(rng.normal(size=(37, 5, 3)), y=np.zeros(37))
    whole = summary_features(ws)
    assert whole.shape == (37, 18)
    np.testing.assert_array_equal(summary_features(ws, chunk=1), whole)
    np.testing.assert_array_equal(summary_features(ws, chunk=10), whole)
    assert summary_features(ws.subset(np.array([], dtype=np.int64))).shape == (0, 18)


def test_prior_predicts_the_training_rate() -> None:
    train = WindowSet.from_dense(np.zeros((4, 2, 1)), y=[0, 1, 0, 0])
    test = WindowSet.from_dense(np.ones((3, 2, 1)), y=[1, 1, 1])
    proba = PriorBaseline().fit(train).predict_proba(test)
    assert proba.dtype == np.float64
    np.testing.assert_array_equal(proba, [0.25, 0.25, 0.25])


def test_persistence_returns_last_seen() -> None:
    ws = WindowSet.from_dense(np.zeros((4, 2, 1)), y=[0, 0, 1, 1], last_seen=[1, 0, 0, 1])
    model = PersistenceBaseline()
    assert model.fit(ws) is model
    proba = model.predict_proba(ws)
    assert proba.dtype == np.float64
    np.testing.assert_array_equal(proba, [1.0, 0.0, 0.0, 1.0])


def planted(n: int, seed: int) -> WindowSet:
    """Noise windows (L=6, F=2) where positives trend upward in feature 0 and end high in feature 1."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.2).astype(np.int8)
    x = rng.normal(size=(n, 6, 2))
    x[:, :, 0] += np.outer(y, np.linspace(0.0, 3.0, 6))
    x[:, -1, 1] += 3.0 * y
    return WindowSet.from_dense(x, y)


@pytest.mark.parametrize("cls", [LogisticBaseline, HistGBBaseline])
def test_learned_baselines_find_a_planted_pattern(cls) -> None:
    train, test = planted(400, seed=2), planted(300, seed=3)
    model = cls(seed=0).fit(train)
    assert model.degenerate is False
    proba = model.predict_proba(test)
    assert proba.shape == (300,) and proba.dtype == np.float64
    assert proba.min() >= 0.0 and proba.max() <= 1.0
    assert score_metrics(test.y, proba, 0.5)["pr_auc"] > 0.9
    # the prior sets the bar: its PR-AUC is the prevalence
    assert score_metrics(test.y, PriorBaseline().fit(train).predict_proba(test), 0.5)["pr_auc"] < 0.4


@pytest.mark.parametrize("cls", [LogisticBaseline, HistGBBaseline])
@pytest.mark.parametrize("label", [0, 1])
def test_single_class_training_falls_back_to_its_rate(cls, label: int) -> None:
    train = WindowSet.from_dense(np.random.default_rng(4).normal(size=(20, 3, 2)), y=np.full(20, label))
    model = cls(seed=0).fit(train)
    assert model.degenerate is True
    np.testing.assert_array_equal(model.predict_proba(planted(5, seed=5)), np.full(5, float(label)))


def test_make_baseline_builds_each_and_rejects_unknown() -> None:
    train = planted(40, seed=8)
    for name in BASELINES:
        model = make_baseline(name, seed=1)
        assert isinstance(model, WindowModel) and model.name == name
        assert model.fit(train, val=train).predict_proba(train).shape == (40,)
    with pytest.raises(ValueError, match="prior, persistence, logistic, hgb"):
        make_baseline("lstm", seed=0)


def test_predict_before_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        LogisticBaseline(seed=0).predict_proba(planted(3, seed=9))


def test_large_training_parts_are_sampled_stratified_and_scored_in_chunks(monkeypatch) -> None:
    train = planted(1000, seed=10)  # ~25 % positive
    seen: list[int] = []
    real = LogisticBaseline._make

    def recording_make(self):
        pipe = real(self)
        fit = pipe.fit
        pipe.fit = lambda x, y: (seen.append((len(x), int(y.sum()))), fit(x, y))[1]
        return pipe

    monkeypatch.setattr(LogisticBaseline, "_make", recording_make)
    model = make_baseline("logistic", seed=0, max_train_windows=200)
    model.fit(train)
    n, positives = seen[0]
    assert n == 200 and model.fitted_on == 200
    assert positives == round(200 * train.y.mean())  # stratified: the sample keeps the training prevalence
    assert model.rate_ == pytest.approx(train.y.mean())  # the rate is still that of every training window
    again = make_baseline("logistic", seed=0, max_train_windows=200).fit(train)
    test = planted(300, seed=11)
    np.testing.assert_array_equal(model.predict_proba(test), again.predict_proba(test))  # same seed, same sample

    monkeypatch.setattr(LogisticBaseline, "predict_chunk", 7)  # chunked scoring equals one pass
    chunked = model.predict_proba(test)
    monkeypatch.setattr(LogisticBaseline, "predict_chunk", 10_000)
    np.testing.assert_allclose(chunked, model.predict_proba(test), rtol=0, atol=1e-12)
    assert make_baseline("hgb", seed=0, max_train_windows=None).fit(train).fitted_on == 1000
