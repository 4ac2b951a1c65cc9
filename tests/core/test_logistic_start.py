"""The logistic start: the untrained network is the logistic baseline, and it is kept unless training beats it."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from lstm_core.baselines import LogisticBaseline
from lstm_core.config import ModelConfig, TrainConfig
from lstm_core.model import LSTMClassifier
from lstm_core.train import (
    DeviceWindows,
    balanced_pos_weight,
    build_model,
    fit_lstm,
    logistic_head_start,
    predict_proba,
    seed_everything,
)
from lstm_core.windows import WindowSet

NET = ModelConfig(hidden=6, layers=1, dropout=0.0, augment_noise_std=0.0)  # head_init: logistic, six statistics


def windows(n: int, seed: int, length: int = 8, features: int = 3) -> WindowSet:
    """Noise windows; positives (~25 %) carry a +1.5 shift in feature 0 over their last 3 rows (summaries see it)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, features)).astype(np.float32)
    y = (rng.random(n) < 0.25).astype(np.int8)
    x[y == 1, -3:, 0] += 1.5
    return WindowSet.from_dense(x, y)


def quick(**kw) -> TrainConfig:
    base = {"epochs": 4, "batch_size": 32, "lr": 1e-2, "patience": 20, "device": "cpu", "seed": 0,
            "min_steps": 0, "evaluations": 4}
    return TrainConfig(**{**base, **kw})


def test_the_untrained_network_scores_as_the_logistic_baseline() -> None:
    train, test = windows(300, 0), windows(120, 1)
    seed_everything(0)
    net = LSTMClassifier(train.n_features, NET)
    assert logistic_head_start(net, DeviceWindows(train, torch.device("cpu")), balanced_pos_weight(train.y), seed=0)
    baseline = LogisticBaseline(seed=0).fit(train).predict_proba(test)
    # the same regression on the same six summaries (the network's slope is the baseline's times L − 1, which the
    # standardisation absorbs) and class_weight='balanced': the same probabilities up to float32 and lbfgs' tolerance
    np.testing.assert_allclose(predict_proba(net, test, "cpu"), baseline, atol=2e-3)
    state = net.head.in_features - 6 * train.n_features
    assert state == NET.hidden and torch.all(net.head.weight[0, :state] == 0)
    with torch.no_grad():  # the recurrent state has no say yet: other LSTM weights, the same scores
        before = predict_proba(net, test, "cpu")
        for p in net.lstm.parameters():
            p.add_(torch.randn_like(p))
    np.testing.assert_array_equal(predict_proba(net, test, "cpu"), before)


def test_one_class_training_windows_leave_the_head_as_initialised() -> None:
    only_negatives = WindowSet.from_dense(np.random.default_rng(0).normal(size=(20, 8, 3)).astype(np.float32),
                                          np.zeros(20, np.int8))
    net = LSTMClassifier(3, NET)
    head = net.head.weight.detach().clone()
    assert not logistic_head_start(net, DeviceWindows(only_negatives, torch.device("cpu")), None, seed=0)
    assert torch.equal(net.head.weight, head)


def test_the_start_is_evaluation_zero_and_stays_when_training_only_makes_it_worse() -> None:
    train, val, test = windows(300, 2), windows(120, 3), windows(120, 4)
    # a rate of 5 with constant schedule wrecks the network at the first step: every trained evaluation is worse
    res = fit_lstm(train, val, NET, quick(lr=5.0, schedule="constant", patience=3))
    assert res.history[0]["step"] == 0 and res.history[0]["epoch"] == 0 and "loss" not in res.history[0]
    assert [row["epoch"] for row in res.history] == [0, 1, 2, 3]  # the start, then 3 stale evaluations
    assert all(row["val_loss"] > res.history[0]["val_loss"] for row in res.history[1:])
    assert (res.best_step, res.best_epoch) == (0, 0)
    np.testing.assert_allclose(predict_proba(build_model(res, NET), test, "cpu"),
                               LogisticBaseline(seed=0).fit(train).predict_proba(test), atol=2e-3)


def zigzag(n: int, seed: int, length: int = 8) -> WindowSet:
    """One feature of noise plus a 4-row pattern at a random row k (never reaching the last row): 2, −2, −2, 2 in
    positives, −2, 2, 2, −2 in negatives. Both hold the same values and sum to zero with Σ t·x = 0, so every
    summary (last, mean, std, min, max, slope) has one distribution in both classes: only the order tells."""
    rng = np.random.default_rng(seed)
    x = rng.normal(scale=0.1, size=(n, length, 1)).astype(np.float32)
    y = (rng.random(n) < 0.3).astype(np.int8)
    k = rng.integers(0, length - 4, size=n)
    shape = np.where(y[:, None] == 1, [2.0, -2.0, -2.0, 2.0], [-2.0, 2.0, 2.0, -2.0])  # (n, 4)
    for j in range(4):
        x[np.arange(n), k + j, 0] += shape[:, j]
    return WindowSet.from_dense(x, y)


def test_training_replaces_the_start_where_the_order_of_the_rows_tells() -> None:
    train, val, test = zigzag(600, 11), zigzag(200, 12), zigzag(300, 13)
    res = fit_lstm(train, val, NET, quick(epochs=15, evaluations=15))
    assert res.best_step > 0 and res.history[0]["step"] == 0
    start = res.history[0]["val_loss"]
    assert min(row["val_loss"] for row in res.history[1:]) < start
    trained = average_precision_score(test.y, predict_proba(build_model(res, NET), test, "cpu"))
    summaries = average_precision_score(test.y, LogisticBaseline(seed=0).fit(train).predict_proba(test))
    assert trained > 0.95 > summaries + 0.2, (trained, summaries)


def test_a_refit_for_zero_steps_is_its_start() -> None:
    train, test = windows(200, 6), windows(80, 7)
    res = fit_lstm(train, None, NET, quick(), steps=0, schedule_steps=40)
    assert res.history == [] and res.schedule_steps == 40
    np.testing.assert_allclose(predict_proba(build_model(res, NET), test, "cpu"),
                               LogisticBaseline(seed=0).fit(train).predict_proba(test), atol=2e-3)


def test_random_init_has_no_evaluation_zero() -> None:
    res = fit_lstm(windows(100, 8), windows(40, 9), NET.model_copy(update={"head_init": "random"}), quick(epochs=2,
                                                                                                        evaluations=2))
    assert [row["step"] for row in res.history] == [4, 8] and res.best_step > 0


@pytest.mark.parametrize("stats", [["mean", "last", "change"], ["last", "max"]])
def test_the_start_follows_the_statistics_the_head_reads(stats: list[str]) -> None:
    train = windows(200, 10)
    net = LSTMClassifier(3, NET.model_copy(update={"head_stats": stats}))
    logistic_head_start(net, DeviceWindows(train, torch.device("cpu")), None, seed=0)
    assert net.head.in_features == NET.hidden + len(stats) * 3
    assert torch.count_nonzero(net.head.weight[0, NET.hidden:]) == len(stats) * 3
