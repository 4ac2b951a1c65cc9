"""The final model is evaluated: a latest slice is held back from the refit, its threshold and metrics come from there."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_core.config import DataConfig, ModelConfig, PipelineConfig, SplitConfig, TrainConfig, WindowConfig
from lstm_core.data import resolve_spec, to_series
from lstm_core.scoring import evaluate_held_out, fit_final, hold_out_split, score_frame
from lstm_core.windows import make_windows

TINY = ModelConfig(hidden=4, layers=1, dropout=0.0)
QUICK = TrainConfig(epochs=1, batch_size=16, device="cpu", min_steps=0, evaluations=1)


def fleet(entities: int = 5, rows: int = 6) -> pd.DataFrame:
    """Entity e has ``rows`` rows whose feature equals e; the label is 1 on each entity's last two rows."""
    e = np.repeat(np.arange(entities), rows)
    t = np.tile(np.arange(rows), entities)
    return pd.DataFrame({"unit": e, "t": t, "x": e.astype(float), "label": (t >= rows - 2).astype(int)})


def test_hold_out_by_entity_keeps_the_last_entities_back() -> None:
    df = fleet()
    data = DataConfig(time_col="t", entity_col="unit", label_col="label", features=["x"])
    series = to_series(df, resolve_spec(df, data))
    index = make_windows(series, 2)  # 5 windows per entity (t = 1 … 5), 25 in all
    train, held = hold_out_split(series, index, SplitConfig(by="entity"), 0.2)  # round(5 · 0.2) = 1 entity
    np.testing.assert_array_equal(held, np.arange(20, 25))
    np.testing.assert_array_equal(train, np.arange(20))


def test_hold_out_by_time_purges_windows_whose_target_reaches_the_slice() -> None:
    df = pd.DataFrame({"t": range(10), "x": np.arange(10.0), "ev": [0, 0, 1, 0, 0, 0, 1, 0, 0, 1]})
    data = DataConfig(time_col="t", event_col="ev", horizon=1, features=["x"])
    series = to_series(df, resolve_spec(df, data))
    index = make_windows(series, 2)
    np.testing.assert_array_equal(index.ends, np.arange(1, 9))  # t ≥ 1 (window 2) and t + 1 ≤ 9 (horizon 1)
    # share 0.25: the slice starts at the 7th of 8 end times (int(8 · 0.75) = 6 → end 7): ends 7, 8 held;
    # end 6 reads row 7 for its target, so it is purged from training
    train, held = hold_out_split(series, index, SplitConfig(by="time"), 0.25)
    np.testing.assert_array_equal(index.ends[held], [7, 8])
    np.testing.assert_array_equal(index.ends[train], [1, 2, 3, 4, 5])


def test_held_out_metrics_are_cross_fitted_by_hand() -> None:
    y = np.array([0, 1, 0, 1])
    scores = np.array([0.1, 0.4, 0.3, 0.8])
    out = evaluate_held_out(y, scores, [np.array([0, 1]), np.array([2, 3])], "mcc")
    # the registered threshold is chosen on all four: 0.4 separates them perfectly
    assert out["threshold"] == 0.4 and out["pr_auc"] == 1.0
    # half 1 picks 0.4 → half 2 gets [0, 1] (right); half 2 picks 0.8 → half 1 gets [0, 0] (misses one):
    # pooled tp 1, fp 0, fn 1, tn 2 → MCC (1·2 − 0)/√(1·2·2·3) = 1/√3, F1 2/3, precision 1, recall 1/2
    assert out["mcc"] == pytest.approx(1 / np.sqrt(3))
    assert (out["f1"], out["precision"], out["recall"]) == (pytest.approx(2 / 3), 1.0, 0.5)
    assert (out["windows"], out["positives"]) == (4, 2)


def test_fit_final_trains_without_the_held_out_entities_and_reports_its_own_metrics() -> None:
    df = fleet()
    cfg = PipelineConfig(data=DataConfig(time_col="t", entity_col="unit", label_col="label", features=["x"]),
                         window=WindowConfig(length=2), split=SplitConfig(by="entity"), model=TINY, train=QUICK)
    series = to_series(df, resolve_spec(df, cfg.data))
    index = make_windows(series, 2)
    scorer = fit_final(series, index, cfg, threshold=0.3, steps=1, schedule_steps=4, hold_out=0.2)
    # the scaler saw entities 0 … 3 only (feature = entity): mean 1.5, population std √1.25
    assert float(scorer.mean[0]) == pytest.approx(1.5) and float(scorer.scale[0]) == pytest.approx(np.sqrt(1.25))
    ev = scorer.evaluation
    assert (ev["windows"], ev["positives"], ev["train_windows"]) == (5, 2, 20)
    assert (ev["steps"], ev["schedule_steps"]) == (1, 4)  # one step of the folds' 4-step schedule
    assert ev["held_out"] == "the last 1 of 5 entities"
    assert scorer.threshold == ev["threshold"]  # chosen on the model's own held-out scores, not the 0.3 given
    assert {"pr_auc", "roc_auc", "mcc", "f1", "precision", "recall", "brier"} <= set(ev)


def test_fit_final_without_hold_out_keeps_the_given_threshold_and_no_evaluation() -> None:
    df = fleet()
    cfg = PipelineConfig(data=DataConfig(time_col="t", entity_col="unit", label_col="label", features=["x"]),
                         window=WindowConfig(length=2), model=TINY, train=QUICK)
    series = to_series(df, resolve_spec(df, cfg.data))
    scorer = fit_final(series, make_windows(series, 2), cfg, epochs=1, threshold=0.3)
    assert scorer.threshold == 0.3 and scorer.evaluation == {}
    assert float(scorer.mean[0]) == pytest.approx(2.0)  # every entity: mean of 0 … 4


def test_fit_final_in_place_scales_the_callers_rows_and_scores_as_the_copying_path() -> None:
    df = fleet()
    cfg = PipelineConfig(data=DataConfig(time_col="t", entity_col="unit", label_col="label", features=["x"]),
                         window=WindowConfig(length=2), split=SplitConfig(by="entity"), model=TINY, train=QUICK)
    copied, scaled = (to_series(df, resolve_spec(df, cfg.data)) for _ in range(2))
    index = make_windows(copied, 2)
    before = copied.features.copy()
    a = fit_final(copied, index, cfg, threshold=0.3, steps=1, schedule_steps=4, hold_out=0.2)
    b = fit_final(scaled, index, cfg, threshold=0.3, steps=1, schedule_steps=4, hold_out=0.2, in_place=True)
    np.testing.assert_array_equal(copied.features, before)  # the default leaves the caller's rows alone
    # in place, the caller's rows are the scaled ones: (x − 1.5) / √1.25, the statistics of entities 0 … 3
    np.testing.assert_allclose(scaled.features, (before - 1.5) / np.sqrt(1.25), rtol=1e-6)
    assert a.evaluation == b.evaluation and a.threshold == b.threshold
    np.testing.assert_array_equal(score_frame(a, df)["score"], score_frame(b, df)["score"])
