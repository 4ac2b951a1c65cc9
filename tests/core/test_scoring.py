"""The deployable scorer: scaler inside the module, one row per window end, the threshold rule, the final refit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from lstm_core.config import DataConfig, ModelConfig, PipelineConfig, TrainConfig, WindowConfig
from lstm_core.data import DataError, resolve_spec, to_series
from lstm_core.model import LSTMClassifier
from lstm_core.scoring import RareEventScorer, ScoringSpec, fit_final, score_frame
from lstm_core.windows import make_windows

NET_CFG = ModelConfig(hidden=8, layers=1, dropout=0.0)


def network(n_features: int = 2, seed: int = 0) -> LSTMClassifier:
    torch.manual_seed(seed)
    return LSTMClassifier(n_features, NET_CFG).eval()


def spec(threshold: float = 0.5, entity_col: str | None = "unit", window: int = 3, max_gap=None,
         time_col: str = "time") -> ScoringSpec:
    return ScoringSpec(time_col, entity_col, ["temp", "vib"], window, max_gap, threshold, "event", 1)


MEAN = np.array([1.0, -2.0], np.float32)
SCALE = np.array([2.0, 0.5], np.float32)


def test_forward_scales_then_scores() -> None:
    net = network()
    scorer = RareEventScorer(net, MEAN, SCALE, spec())
    x = torch.randn(5, 3, 2, generator=torch.Generator().manual_seed(1))  # (B, L, F) raw
    with torch.no_grad():
        expected = torch.sigmoid(net((x - torch.as_tensor(MEAN)) / torch.as_tensor(SCALE)))
        got = scorer(x)
        # raw windows equal to the mean are all-zero once scaled
        at_mean = scorer(torch.as_tensor(MEAN).expand(1, 3, 2))
        zero = torch.sigmoid(net(torch.zeros(1, 3, 2)))
    assert got.shape == (5,)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(at_mean, zero)
    assert not torch.allclose(got, torch.sigmoid(net(x)).detach())  # the scaler is really applied
    assert {"mean", "scale"} <= set(scorer.state_dict())  # saved with the weights
    assert scorer.threshold == 0.5 and scorer.spec["features"] == ["temp", "vib"]


def raw_fleet() -> pd.DataFrame:
    """No label column. b: times 0..4, temp = t+1, vib = 10t; a: times 10..12, temp = −t, vib = 10t. Shuffled."""
    b = pd.DataFrame({"time": range(5), "unit": "b"})
    a = pd.DataFrame({"time": range(10, 13), "unit": "a"})
    df = pd.concat([b, a], ignore_index=True)
    df["temp"] = np.where(df.unit == "b", df.time + 1.0, -df.time.astype(float))
    df["vib"] = 10.0 * df.time
    return df.iloc[[2, 6, 0, 7, 4, 1, 5, 3]].reset_index(drop=True)  # b seen first, times out of order


# the hand-cut windows (L=3) in output order: b ends at 2, 3, 4; a ends at 12
HAND_WINDOWS = np.array([
    [[1, 0], [2, 10], [3, 20]],  # b, times 0..2
    [[2, 10], [3, 20], [4, 30]],  # b, times 1..3
    [[3, 20], [4, 30], [5, 40]],  # b, times 2..4
    [[-10, 100], [-11, 110], [-12, 120]],  # a, times 10..12
], np.float32)


def test_score_frame_one_row_per_complete_window() -> None:
    net = network()
    with torch.no_grad():
        hand = RareEventScorer(net, MEAN, SCALE, spec())(torch.as_tensor(HAND_WINDOWS)).numpy()
    threshold = float(np.sort(hand)[:2].mean())  # between the lowest two scores: one 0, three 1s
    out = score_frame(RareEventScorer(net, MEAN, SCALE, spec(threshold)), raw_fleet())
    assert list(out.columns) == ["entity", "time", "score", "prediction"]
    assert out["entity"].tolist() == ["b", "b", "b", "a"]  # first appearance, no window across b → a
    assert out["time"].tolist() == [2, 3, 4, 12]
    np.testing.assert_allclose(out["score"].to_numpy(), hand, rtol=1e-6)
    np.testing.assert_array_equal(out["prediction"].to_numpy(), (hand >= threshold).astype(np.int8))
    assert out["prediction"].sum() == 3


def test_prediction_is_score_at_or_above_threshold() -> None:
    net = network()
    first = score_frame(RareEventScorer(net, MEAN, SCALE, spec()), raw_fleet())
    k = int(np.argsort(first["score"].to_numpy())[1])
    exact = float(first["score"].iloc[k])
    again = score_frame(RareEventScorer(net, MEAN, SCALE, spec(exact)), raw_fleet())
    assert again["score"].iloc[k] == exact and again["prediction"].iloc[k] == 1  # equal counts as ≥
    assert again["prediction"].sum() == 3


def test_score_frame_without_entity_and_with_datetimes_and_max_gap() -> None:
    times = pd.to_datetime(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00",
                            "2024-01-01 05:00", "2024-01-01 06:00", "2024-01-01 07:00"])
    df = pd.DataFrame({"ts": times.astype(str), "temp": np.arange(6.0), "vib": np.ones(6), "other": "x"})
    scorer = RareEventScorer(network(), MEAN, SCALE, spec(entity_col=None, window=2, max_gap="2h", time_col="ts"))
    out = score_frame(scorer, df)
    assert list(out.columns) == ["time", "score", "prediction"]
    # L=2: rows 1..5 close a window; the one ending at 05:00 spans the 3h gap (> 2h) and is dropped
    assert out["time"].tolist() == list(pd.to_datetime(["2024-01-01 01:00", "2024-01-01 02:00",
                                                        "2024-01-01 06:00", "2024-01-01 07:00"]))
    hand = np.array([[[0, 1], [1, 1]], [[1, 1], [2, 1]], [[3, 1], [4, 1]], [[4, 1], [5, 1]]], np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(out["score"].to_numpy(), scorer(torch.as_tensor(hand)).numpy(), rtol=1e-6)


def test_missing_feature_column_is_named() -> None:
    scorer = RareEventScorer(network(), MEAN, SCALE, spec())
    with pytest.raises(DataError, match=r"column\(s\) \['vib'\] needed by the model are not in the file"):
        score_frame(scorer, raw_fleet().drop(columns="vib"))


def test_missing_feature_values_name_the_file_lines_plainly() -> None:
    df = raw_fleet()
    df.loc[3, "temp"] = np.nan  # 0-based data row 3 → 1-based line 4 → + header line → file line 5
    with pytest.raises(DataError, match=r"missing feature values at lines \[5\]$"):
        score_frame(RareEventScorer(network(), MEAN, SCALE, spec()), df)


def test_fit_final_wraps_scaler_network_and_threshold() -> None:
    df = pd.DataFrame({"time": range(10), "temp": np.arange(10.0), "vib": np.arange(10.0) % 2,
                       "event": [0, 0, 0, 0, 0, 1, 0, 0, 0, 1]})
    cfg = PipelineConfig(data=DataConfig(event_col="event", horizon=1, features=["temp", "vib"]),
                         window=WindowConfig(length=4), model=NET_CFG,
                         train=TrainConfig(epochs=1, batch_size=8, device="cpu"))
    series = to_series(df, resolve_spec(df, cfg.data))
    index = make_windows(series, 4)
    np.testing.assert_array_equal(index.ends, [3, 4, 5, 6, 7, 8])  # L=4 → t ≥ 3; H=1 → t ≤ 8
    scorer = fit_final(series, index, cfg, epochs=2, threshold=0.37)
    assert isinstance(scorer, RareEventScorer) and scorer.threshold == 0.37
    assert scorer.spec == {"time_col": "time", "entity_col": None, "features": ["temp", "vib"], "window": 4,
                           "max_gap": None, "threshold": 0.37, "mode": "event", "horizon": 1}
    # the windows read rows 0..8 (row 9 is only a horizon row): temp mean 4, population var (81−1)/12 = 20/3;
    # vib = 0,1,0,1,0,1,0,1,0 → mean 4/9, var 4/9·5/9 = 20/81
    np.testing.assert_allclose(scorer.mean.numpy(), [4.0, 4 / 9], rtol=1e-6)
    np.testing.assert_allclose(scorer.scale.numpy(), [np.sqrt(20 / 3), np.sqrt(20 / 81)], rtol=1e-6)
    assert not scorer.network.training
    out = score_frame(scorer, df.drop(columns="event"))
    assert out["time"].tolist() == [3, 4, 5, 6, 7, 8, 9]  # scoring needs no horizon: row 9 closes a window
