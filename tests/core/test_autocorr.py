"""window: auto — the ACF rule on hand-made series, pooling per entity, clipping, and no row past the boundary."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_core.autocorr import (
    first_block_boundary,
    longest_length,
    pooled_acf,
    resolve_length,
    suggest_length,
)
from lstm_core.config import load_config
from lstm_core.data import DataError, DataSpec, to_series
from lstm_core.splits import make_folds
from lstm_core.windows import make_windows


def _series(features: dict[str, np.ndarray], target: np.ndarray, entity: np.ndarray | None = None,
            mode: str = "label", lookahead: int = 0):
    n = len(target)
    entity = np.zeros(n, np.int64) if entity is None else entity
    # integer time steps, restarting per entity: entities run side by side in time
    time = np.concatenate([np.arange((entity == e).sum()) for e in pd.unique(entity)])
    df = pd.DataFrame({"t": time, "m": entity, **features, "y": target})
    spec = DataSpec("t", "m", tuple(features), "y", mode, lookahead)
    return to_series(df, spec)


def _config(**overrides):
    base = {"data.label_col": "y", "data.time_col": "t", "data.entity_col": "m", "window.length": "auto",
            "split.folds": 1, "window.auto_min": 1, "window.auto_max": 64}
    return load_config(None, {**base, **overrides})


def test_pooled_acf_by_hand_and_never_across_entities():
    # one segment [1, 2, 3, 4]: centred -1.5 -0.5 0.5 1.5, Σz² = 5;
    # lag 1: (-1.5)(-0.5) + (-0.5)(0.5) + (0.5)(1.5) = 1.25 → 0.25; lag 2: (-1.5)(0.5) + (-0.5)(1.5) = -1.5 → -0.3
    acf = pooled_acf(np.array([1.0, 2, 3, 4]), np.array([0]), np.array([4]), 3)
    assert acf[:, 0] == pytest.approx([1.0, 0.25, -0.3, -0.45])
    # two entities [1, 3] and [10, 14]: each centred on its own mean (-1, 1) and (-2, 2), Σz² = 10;
    # lag 1 within them: (-1)(1) + (-2)(2) = -5 → -0.5; the pair (3, 10) across the border never enters
    two = pooled_acf(np.array([1.0, 3, 10, 14]), np.array([0, 2]), np.array([2, 4]), 2)
    assert two[:, 0] == pytest.approx([1.0, -0.5, 0.0])
    # a constant column has no autocorrelation at all
    assert np.isnan(pooled_acf(np.full(6, 7.0), np.array([0]), np.array([6]), 2)).all()


def test_periodic_features_give_a_quarter_period():
    # sin with period 40: acf(k) ≈ (1 - k/n)·cos(2πk/40); it first enters ±1.96/√n where the cosine
    # crosses zero, at k = 10 (cos 90° = 0), while acf(9) ≈ cos 81° = 0.156 is far outside ±0.035
    n = 3200
    t = np.arange(n)
    wave, shifted = np.sin(2 * np.pi * t / 40), np.cos(2 * np.pi * t / 40)
    target = (np.arange(n) % 97 == 0).astype(int)  # isolated events: acf(1) ≈ -1/97, inside at lag 1
    found = suggest_length(_series({"a": wave, "b": shifted}, target), _config())
    assert found.lags == [1, 10, 10]
    assert found.names == ["y", "a", "b"]
    assert found.length == 10 and found.raw == 10
    # 1 fold = 2 time blocks; with auto_max = 64 there are n - 63 windows, so the first test block starts no
    # earlier than end time (n - 63) // 2 = 1568: rows 0 … 1567 are read
    assert found.rows == (n - 63) // 2 == 1568
    assert found.band == pytest.approx(1.959963984540054 / np.sqrt(1568))


def test_ar1_lag_matches_the_hand_computed_one():
    # x_t = 0.5 x_{t-1} exactly, restarted at 1 every 40 rows: each 40-row entity is 1, 0.5, 0.25, ...
    # centred per entity the acf is computed by hand below; the lag is its first value inside 1.96/√n
    rows = 40
    block = 0.5 ** np.arange(rows)
    x = np.tile(block, 50)
    entity = np.repeat(np.arange(50), rows)
    z = block - block.mean()
    by_hand = np.array([(z[: rows - k] @ z[k:]) / (z @ z) for k in range(0, 30)])
    series = _series({"x": x}, np.tile(np.r_[np.zeros(rows - 3), 1, 1, 1], 50).astype(int), entity)
    cfg = _config(**{"split.by": "entity", "split.folds": 1, "window.auto_max": 29})
    found = suggest_length(series, cfg)
    n = 25 * rows  # the first of the two entity blocks: 25 entities
    band = 1.959963984540054 / np.sqrt(n)
    expected = int(np.flatnonzero(np.abs(by_hand[1:]) < band)[0]) + 1
    assert found.acf[:30, 1] == pytest.approx(by_hand, abs=1e-9)
    assert found.lags[1] == expected
    assert found.rows == n


def test_clipping_and_resolution():
    n = 2000
    slow = np.sin(2 * np.pi * np.arange(n) / 400)  # quarter period 100
    target = (np.arange(n) % 50 == 0).astype(int)
    series = _series({"s": slow}, target)
    free = suggest_length(series, _config(**{"window.auto_max": 256})).raw
    assert 90 <= free <= 100  # the cosine's zero at lag 100, entered a little early: band ±0.066 on 872 rows
    capped = suggest_length(series, _config(**{"window.auto_max": 64}))
    assert (capped.raw, capped.length) == (64, 64)  # never inside the band up to 64 lags: counts as 64
    floored = suggest_length(_series({"s": np.random.default_rng(0).normal(size=n)}, target),
                             _config(**{"window.auto_min": 16}))
    assert floored.raw < 16 and floored.length == 16
    cfg, found = resolve_length(series, _config(**{"window.auto_max": 256}))
    assert cfg.window.length == free == found.length
    fixed = _config(**{"window.length": 24})
    assert resolve_length(series, fixed) == (fixed, None)


def test_rows_after_the_boundary_do_not_change_the_suggestion():
    rng = np.random.default_rng(1)
    n, folds = 1200, 3
    x = np.convolve(rng.normal(size=n + 20), np.ones(20) / 20, "valid")[:n]  # moving average: memory ≈ 20
    target = (rng.random(n) < 0.05).astype(int)
    entity = np.repeat([0, 1], n // 2)
    cfg = _config(**{"split.folds": folds, "data.label_lookahead": 5, "window.auto_max": 40})
    series = _series({"x": x}, target, entity, lookahead=5)
    found = suggest_length(series, cfg)
    bound = first_block_boundary(series, cfg)
    # the boundary is at or before the first test block for every length the suggestion may take
    assert longest_length(series, cfg) == 40  # entities of 600 rows: the first of 4 blocks holds 150 of each
    for length in range(1, 41):
        fold = make_folds(series, make_windows(series, length), cfg.split)[0]
        assert bound <= series.time[make_windows(series, length).ends[fold.test]].min()
    late = series.time >= bound
    assert 0 < late.sum() < n
    poisoned = _series({"x": np.where(late, 1e6 * rng.normal(size=n), x)}, np.where(late, 1 - target, target),
                       entity, lookahead=5)
    again = suggest_length(poisoned, cfg)
    assert again.acf.tobytes() == found.acf.tobytes() and again.length == found.length
    # the labels of the last 5 rows before the boundary look past it, so they are not read either
    near = (series.time >= bound - 5) & ~late
    flipped = suggest_length(_series({"x": x}, np.where(near, 1 - target, target), entity, lookahead=5), cfg)
    assert flipped.acf.tobytes() == found.acf.tobytes()
    # while a row before the boundary does change it (so the comparison above can fail)
    early = _series({"x": np.where(series.time == 3, 50.0, x)}, target, entity, lookahead=5)
    assert not np.array_equal(suggest_length(early, cfg).acf, found.acf)


def test_entity_split_reads_only_the_first_block_of_entities():
    rng = np.random.default_rng(2)
    entity = np.repeat(np.arange(8), 100)
    x, target = rng.normal(size=800), (rng.random(800) < 0.1).astype(int)
    cfg = _config(**{"split.by": "entity", "split.folds": 3, "window.auto_max": 20})
    found = suggest_length(_series({"x": x}, target, entity), cfg)
    later = entity >= 2  # 8 entities in 4 blocks: the first block is entities 0 and 1
    other = suggest_length(_series({"x": np.where(later, -x, x)}, np.where(later, 1 - target, target), entity), cfg)
    assert other.acf.tobytes() == found.acf.tobytes() and found.rows == 200
    assert found.boundary.startswith("entities 0 … 1")


def test_the_upper_end_is_the_longest_window_the_data_holds():
    # two entities of 30 and 50 rows, event mode with horizon 4: the longest window is 50 - 4 = 46 rows
    entity = np.repeat([0, 1], [30, 50])
    ramp = np.concatenate([np.arange(30.0), np.arange(50.0)])
    events = np.zeros(80, int)
    events[[10, 20, 40, 60, 70]] = 1
    cfg = _config(**{"data.label_col": None, "data.event_col": "y", "data.horizon": 4, "split.by": "entity"})
    found = suggest_length(_series({"x": ramp}, events, entity, mode="event", lookahead=4), cfg)
    assert found.acf.shape[0] == 47 and found.clipped_to == (1, 46)  # lags 0 … 46 only, though auto_max = 64
    # the lag the ramp's 30 first-block rows give, counted by hand: acf(k) = Σ z_t z_{t+k} / Σ z² first < 1.96/√30
    z = np.arange(30.0) - 14.5
    by_hand = next(k for k in range(1, 30) if abs(z[:-k] @ z[k:] / (z @ z)) < 1.959963984540054 / np.sqrt(30))
    assert found.lags == [1, by_hand] and found.length == by_hand


def test_too_little_data_is_a_clear_error():
    series = _series({"x": np.arange(10.0)}, np.r_[np.zeros(9), 1].astype(int))
    with pytest.raises(DataError, match="window.auto_min = 12"):
        suggest_length(series, _config(**{"window.auto_min": 12}))


def test_reads_for_a_longer_window_stops_before_its_first_test_block_too():
    """Tuning may try a window longer than auto's upper end: the ACF then stops before that window's first
    test block as well, and still clips its suggestion to auto's own range."""
    rng = np.random.default_rng(1)
    n = 1200
    x = np.convolve(rng.normal(size=n + 20), np.ones(20) / 20, "valid")[:n]
    entity = np.repeat([0, 1], n // 2)
    cfg = _config(**{"split.folds": 3, "window.auto_max": 40})
    series = _series({"x": x}, (rng.random(n) < 0.05).astype(int), entity)
    own, longer = suggest_length(series, cfg), suggest_length(series, cfg, reads_for=120)
    bound = first_block_boundary(series, cfg, 120)
    assert longer.boundary == f"time < {bound}" and bound < first_block_boundary(series, cfg)
    assert longer.rows == int(np.sum(series.time < bound)) < own.rows
    fold = make_folds(series, make_windows(series, 120), cfg.split)[0]
    assert bound <= series.time[make_windows(series, 120).ends[fold.test]].min()
    assert 1 <= longer.length <= 40
