"""Balanced bagging: K members on their own balanced draws, probabilities averaged, in the scorer too."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lstm_core.config import (
    DataConfig,
    ModelConfig,
    PipelineConfig,
    ResampleConfig,
    TrainConfig,
    WindowConfig,
)
from lstm_core.data import resolve_spec, to_series
from lstm_core.ensemble import BalancedBaggingLSTM, fit_members
from lstm_core.model import LSTMClassifier
from lstm_core.resample import bagging_draws
from lstm_core.scoring import RareEventScorer, ScoringSpec, fit_final
from lstm_core.train import build_model, fit_lstm, predict_proba
from lstm_core.windows import WindowSet, make_windows

# PyTorch's initialisation: members that keep a logistic start (this data is easy) are one and the same network
TINY = ModelConfig(hidden=8, layers=1, dropout=0.0, head_init="random")
TRAIN = TrainConfig(epochs=2, batch_size=32, lr=1e-2, patience=20, device="cpu", seed=3, min_steps=0, evaluations=2)
BAG = ResampleConfig(strategy="balanced_bagging", bagging_estimators=2)


def planted(n: int, seed: int, length: int = 6) -> WindowSet:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, 2)).astype(np.float32)
    y = (rng.random(n) < 0.15).astype(np.int8)
    x[y == 1, -2:, 0] += 2.5
    return WindowSet.from_dense(x, y)


def test_members_train_on_their_own_draws_and_the_ensemble_averages() -> None:
    train, val, test = planted(120, 0), planted(40, 1), planted(50, 2)
    seen: list[dict] = []
    model = BalancedBaggingLSTM(TINY, TRAIN, BAG, on_epoch=seen.append).fit(train, val)
    assert len(model.results) == 2
    assert [row["member"] for row in seen] == [1, 1, 2, 2]  # 2 epochs each, member by member
    # member i is exactly a single LSTM with seed + i on draw i
    for i, (result, draw) in enumerate(zip(model.results, bagging_draws(train.y, BAG, TRAIN.seed), strict=True)):
        alone = fit_lstm(train.subset(draw), val, TINY, TRAIN.model_copy(update={"seed": TRAIN.seed + i}))
        assert result.history == alone.history
    members = [predict_proba(build_model(r, TINY), test, "cpu") for r in model.results]
    assert not np.allclose(members[0], members[1])  # different draws and seeds, different networks
    np.testing.assert_allclose(model.predict_proba(test), (members[0] + members[1]) / 2)


def test_fit_members_shares_the_rows() -> None:
    train = planted(80, 4)
    draws = bagging_draws(train.y, BAG, TRAIN.seed)
    assert all(np.shares_memory(train.subset(d).rows, train.rows) for d in draws)
    results = fit_members(train, None, TINY, TRAIN, BAG, epochs=1)
    assert [len(r.history) for r in results] == [1, 1]


def spec() -> ScoringSpec:
    return ScoringSpec("time", None, ["temp", "vib"], 3, None, 0.5, "event", 1)


def test_scorer_averages_its_networks_and_keeps_the_single_case() -> None:
    torch.manual_seed(0)
    nets = [LSTMClassifier(2, TINY).eval() for _ in range(3)]
    mean, scale = np.array([1.0, -1.0], np.float32), np.array([2.0, 0.5], np.float32)
    x = torch.randn(4, 3, 2, generator=torch.Generator().manual_seed(1))
    z = (x - torch.as_tensor(mean)) / torch.as_tensor(scale)
    with torch.no_grad():
        expected = torch.stack([torch.sigmoid(n(z)) for n in nets]).mean(dim=0)
        ensemble = RareEventScorer(nets, mean, scale, spec())
        torch.testing.assert_close(ensemble(x), expected)
        single = RareEventScorer(nets[0], mean, scale, spec())
        torch.testing.assert_close(single(x), torch.sigmoid(nets[0](z)))
    assert isinstance(ensemble.networks, torch.nn.ModuleList) and len(ensemble.networks) == 3
    assert {k.split(".")[0] for k in single.state_dict()} == {"network", "mean", "scale"}  # as before


def test_fit_final_with_balanced_bagging_wraps_every_member() -> None:
    rng = np.random.default_rng(0)
    n = 60
    df = pd.DataFrame({"time": range(n), "temp": rng.normal(size=n), "vib": rng.normal(size=n),
                       "event": (np.arange(n) % 7 == 0).astype(int)})
    cfg = PipelineConfig(data=DataConfig(event_col="event", horizon=1, features=["temp", "vib"]),
                         window=WindowConfig(length=4), model=TINY, resample=BAG,
                         train=TrainConfig(epochs=1, batch_size=16, device="cpu"))
    series = to_series(df, resolve_spec(df, cfg.data))
    scorer = fit_final(series, make_windows(series, 4), cfg, epochs=1, threshold=0.4)
    assert len(scorer.networks) == 2 and not hasattr(scorer, "network")
    with torch.no_grad():
        out = scorer(torch.randn(5, 4, 2))
    assert out.shape == (5,) and bool(((out > 0) & (out < 1)).all())


@pytest.mark.parametrize("k", [1, 3])
def test_bagging_estimators_sets_the_member_count(k: int) -> None:
    cfg = BAG.model_copy(update={"bagging_estimators": k})
    results = fit_members(planted(60, 5), None, TINY, TRAIN, cfg, epochs=1)
    assert len(results) == k


def test_a_seed_ensemble_averages_networks_from_consecutive_seeds_and_its_first_is_the_single_lstm() -> None:
    from lstm_core.ensemble import fit_model

    train, val, test = planted(120, 0), planted(40, 1), planted(50, 2)
    seeds = TINY.model_copy(update={"ensemble_seeds": 3})
    seen: list[dict] = []
    model = fit_model(train, val, seeds, TRAIN, ResampleConfig(), pos_weight=2.0, on_epoch=seen.append)
    assert len(model.results) == 3 and [row["member"] for row in seen] == [1, 1, 2, 2, 3, 3]
    for i, result in enumerate(model.results):
        alone = fit_lstm(train, val, TINY, TRAIN.model_copy(update={"seed": TRAIN.seed + i}), 2.0)
        assert result.history == alone.history  # same windows, pos_weight and budget; only the seed moves
    members = [predict_proba(build_model(r, TINY), test, "cpu") for r in model.results]
    assert not np.allclose(members[0], members[1])
    np.testing.assert_allclose(model.predict_proba(test), np.mean(members, axis=0))
    single = fit_model(train, val, TINY, TRAIN, ResampleConfig(), pos_weight=2.0)
    assert len(single.results) == 1 and single.results[0].history == model.results[0].history
