"""Walk-forward folds: hand-computed parts, purge and embargo, entity groups, and a randomised no-leak property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_core.config import DataConfig, SplitConfig
from lstm_core.data import DataError, Series, resolve_spec, to_series
from lstm_core.splits import (
    check_fold_positives,
    fit_scaler,
    fold_windows,
    make_folds,
    time_folds,
    training_rows,
)
from lstm_core.windows import make_windows


def series_of(df: pd.DataFrame, **cfg) -> Series:
    return to_series(df, resolve_spec(df, DataConfig(**cfg)))


def eq(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def thirty_rows(x: np.ndarray | None = None) -> pd.DataFrame:
    """One entity, rows 0..29 at time 10·row (so a row count and a time difference never coincide)."""
    events = np.zeros(30, int)
    events[[4, 12, 20, 26]] = 1
    x = np.arange(30.0) if x is None else x
    return pd.DataFrame({"time": 10 * np.arange(30), "x": x, "event": events})


# L=2, H=2 → windows end at rows 1..27 (27 windows). K=2 → 3 blocks of 9 by end time:
# cuts at sorted positions 27·1//3 = 9 and 27·2//3 = 18 → rows 10 and 19 (times 100, 190).
# val_fraction=0.4: val starts at sorted position int(n·0.6) of the training part.
#   expanding fold 1: part rows 1..9, int(5.4)=5 → val_start = row 6.
#     E=0: train keeps end+2 < 6 → 1..3; val keeps end>=6 and end+2 < 10 → 6, 7
#     E=1: train end+3 < 6 → 1, 2;       val end+3 < 10 → 6
#   expanding fold 2: part rows 1..18, int(10.8)=10 → val_start = row 11.
#     E=0: train end+2 < 11 → 1..8; val 11..18 with end+2 < 19 → 11..16
#     E=1: train end+3 < 11 → 1..7; val end+3 < 19 → 11..15
#   sliding fold 2: part rows 10..18, int(5.4)=5 → val_start = row 15.
#     E=0: train end+2 < 15 → 10..12; val 15..18 with end+2 < 19 → 15, 16
#     E=1: train end+3 < 15 → 10, 11; val end+3 < 19 → 15
#   tests: fold 1 rows 10..18, fold 2 rows 19..27 (both schemes)


def R(a: int, b: int) -> list[int]:
    """Inclusive row range a..b."""
    return list(range(a, b + 1))


EXPECTED = {
    ("expanding", 0): [(R(1, 3), [6, 7], R(10, 18)), (R(1, 8), R(11, 16), R(19, 27))],
    ("expanding", 1): [(R(1, 2), [6], R(10, 18)), (R(1, 7), R(11, 15), R(19, 27))],
    ("sliding", 0): [(R(1, 3), [6, 7], R(10, 18)), (R(10, 12), [15, 16], R(19, 27))],
    ("sliding", 1): [(R(1, 2), [6], R(10, 18)), (R(10, 11), [15], R(19, 27))],
}


@pytest.mark.parametrize(("scheme", "embargo"), list(EXPECTED))
def test_time_folds_exact_parts(scheme: str, embargo: int) -> None:
    s = series_of(thirty_rows(), event_col="event", horizon=2)
    idx = make_windows(s, 2)
    eq(idx.ends, R(1, 27))
    folds = make_folds(s, idx, SplitConfig(folds=2, scheme=scheme, val_fraction=0.4, embargo=embargo))
    assert [f.k for f in folds] == [1, 2]
    for fold, (train, val, test) in zip(folds, EXPECTED[(scheme, embargo)], strict=True):
        eq(idx.ends[fold.train], train)
        eq(idx.ends[fold.val], val)
        eq(idx.ends[fold.test], test)
    # purged = training part − kept: fold 1 part has 9 windows
    assert folds[0].purged == 9 - len(EXPECTED[(scheme, embargo)][0][0]) - len(EXPECTED[(scheme, embargo)][0][1])


def test_time_fold_bounds_are_times_not_rows() -> None:
    s = series_of(thirty_rows(), event_col="event", horizon=2)
    folds = make_folds(s, make_windows(s, 2), SplitConfig(folds=2, val_fraction=0.4))
    # rows 6 / 10 / 19 at time 10·row; the last test stop is one past the last end time 270
    assert folds[0].bounds == {"val_start": 60, "test_start": 100, "test_stop": 190}
    assert folds[1].bounds == {"val_start": 110, "test_start": 190, "test_stop": 271}


def test_time_blocks_have_equal_window_counts() -> None:
    s = series_of(thirty_rows(), event_col="event", horizon=1)
    idx = make_windows(s, 2)
    eq(idx.ends, R(1, 28))  # 28 windows
    folds = time_folds(s, idx, SplitConfig(folds=3, val_fraction=0.2))
    # 4 blocks of 7: cuts at sorted positions 7, 14, 21 → rows 8, 15, 22
    eq(idx.ends[folds[0].test], R(8, 14))
    eq(idx.ends[folds[1].test], R(15, 21))
    eq(idx.ends[folds[2].test], R(22, 28))


# ---------------------------------------------------------------- entity folds

ORDER = ["m7", "m2", "m9", "m1", "m5", "m3", "m8"]  # order of first appearance, deliberately unsorted


def fleet() -> pd.DataFrame:
    frames = []
    for i, name in enumerate(ORDER):
        n = 5 + i % 3  # 5, 6 or 7 rows
        frames.append(pd.DataFrame({"time": range(n), "unit": name, "x": np.arange(n, dtype=float) + 10 * i,
                                    "event": (np.arange(n) == n - 1).astype(int)}))
    # calendar-sorted file: entities interleave, first appearances keep ORDER
    return pd.concat(frames, ignore_index=True).sort_values("time", kind="stable").reset_index(drop=True)


def names(s: Series, idx, pos: np.ndarray) -> set[str]:
    return {s.entity_names[c] for c in s.entity[idx.ends[pos]]}


# 7 entities, K=2 → np.array_split into 3 groups of sizes 3, 2, 2: [m7 m2 m9] [m1 m5] [m3 m8]
# val_fraction=0.25: n_val = max(1, round(0.25·n_train_entities))
#   expanding fold 1: train entities m7 m2 m9, round(0.75)=1 → val m9; test m1 m5
#   expanding fold 2: m7 m2 m9 m1 m5, round(1.25)=1 → val m5; test m3 m8
#   sliding fold 2: m1 m5, max(1, round(0.5)=0) = 1 → val m5, train m1; test m3 m8
@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        ("expanding", [({"m7", "m2"}, {"m9"}, {"m1", "m5"}), ({"m7", "m2", "m9", "m1"}, {"m5"}, {"m3", "m8"})]),
        ("sliding", [({"m7", "m2"}, {"m9"}, {"m1", "m5"}), ({"m1"}, {"m5"}, {"m3", "m8"})]),
    ],
)
def test_entity_folds_exact_groups(scheme: str, expected) -> None:
    s = series_of(fleet(), entity_col="unit", event_col="event", horizon=1)
    assert s.entity_names == ORDER
    idx = make_windows(s, 2)
    folds = make_folds(s, idx, SplitConfig(by="entity", folds=2, scheme=scheme, val_fraction=0.25))
    window_entity = s.entity[idx.ends]
    for fold, parts in zip(folds, expected, strict=True):
        got = [names(s, idx, getattr(fold, p)) for p in ("train", "val", "test")]
        assert got == list(parts)
        for p, part in zip(("train", "val", "test"), parts, strict=True):
            # every window of those entities is in the part (no purge across entities)
            codes = [ORDER.index(n) for n in part]
            eq(getattr(fold, p), np.flatnonzero(np.isin(window_entity, codes)))
        assert fold.purged == 0


def test_entity_split_needs_folds_plus_one_entities() -> None:
    df = fleet()
    df = df[df.unit.isin(["m7", "m2"])]
    s = series_of(df, entity_col="unit", event_col="event", horizon=1)
    with pytest.raises(DataError, match="needs at least 3 entities; the data has 2"):
        make_folds(s, make_windows(s, 2), SplitConfig(by="entity", folds=2))


def test_entity_split_needs_a_training_entity_besides_validation() -> None:
    df = fleet()
    df = df[df.unit.isin(["m7", "m2", "m9"])]  # groups of one: fold 1 trains on m7 alone
    s = series_of(df, entity_col="unit", event_col="event", horizon=1)
    with pytest.raises(DataError, match="fold 1: 1 training entities leave none to train on"):
        make_folds(s, make_windows(s, 2), SplitConfig(by="entity", folds=2))


# ---------------------------------------------------------------- errors


def test_too_many_folds_is_a_clear_error() -> None:
    s = series_of(thirty_rows(), event_col="event", horizon=2)
    idx = make_windows(s, 2)
    with pytest.raises(DataError, match="cannot cut 27 windows into 31 time blocks.*use fewer folds"):
        make_folds(s, idx, SplitConfig(folds=30))
    # 9 blocks of 3 windows: fold 1's part is rows 1..3, val from row 2, and H=2 purges rows 1..3 from training
    with pytest.raises(DataError, match="fold 1: the train part holds no window after the purge; use fewer folds"):
        make_folds(s, idx, SplitConfig(folds=8, val_fraction=0.4))


def test_no_window_at_all_is_a_clear_error() -> None:
    s = series_of(thirty_rows(), event_col="event", horizon=2)
    with pytest.raises(DataError, match="no complete window"):
        make_folds(s, make_windows(s, 29), SplitConfig(folds=2))


# ---------------------------------------------------------------- the leakage property


def random_case(rng: np.random.Generator):
    frames = []
    for e in range(int(rng.integers(1, 5))):
        n = int(rng.integers(60, 160))
        t = int(rng.integers(0, 40)) + np.cumsum(rng.integers(1, 4, size=n))  # irregular integer steps
        frames.append(pd.DataFrame({"time": t, "unit": f"u{e}", "x": rng.normal(size=n),
                                    "sig": (rng.random(n) < 0.15).astype(int)}))
    df = pd.concat(frames, ignore_index=True).sample(frac=1.0, random_state=int(rng.integers(1 << 30)))
    if rng.random() < 0.5:
        data = {"event_col": "sig", "horizon": int(rng.integers(1, 5))}
    else:
        data = {"label_col": "sig", "label_lookahead": int(rng.integers(0, 4))}
    s = series_of(df, entity_col="unit", **data)
    length = int(rng.integers(1, 7))
    split = SplitConfig(folds=int(rng.integers(1, 5)), scheme=str(rng.choice(["expanding", "sliding"])),
                        val_fraction=float(rng.uniform(0.1, 0.4)), embargo=int(rng.integers(0, 4)))
    return s, length, split


def decided_rows(s: Series, idx, pos: np.ndarray) -> np.ndarray:
    """Rows whose label/event decides the targets of windows ``pos`` (computed from the definition)."""
    mask = np.zeros(len(s), bool)
    for t in idx.ends[pos]:
        last = s.stops[s.entity[t]] - 1
        if s.spec.mode == "event":
            mask[t + 1:t + s.spec.lookahead + 1] = True  # rows t+1 … t+H
        else:
            mask[t:min(t + s.spec.lookahead, last) + 1] = True  # label[t] looking `lookahead` rows ahead
    return mask


def read_rows(n: int, ends: np.ndarray, length: int) -> np.ndarray:
    mask = np.zeros(n, bool)
    for t in ends:
        mask[t - length + 1:t + 1] = True
    return mask


def test_no_fold_leaks_the_test_targets_into_training() -> None:
    rng = np.random.default_rng(2024)
    checked = 0
    for _ in range(50):
        s, length, split = random_case(rng)
        idx = make_windows(s, length)
        try:
            folds = make_folds(s, idx, split)
        except DataError:
            continue  # too small for this many folds: the clear error is tested elsewhere
        checked += 1
        end_t = s.time[idx.ends]
        entity_last = s.stops[s.entity[idx.ends]] - 1
        embargoed_t = s.time[np.minimum(idx.reach + split.embargo, entity_last)]
        for f in folds:
            vs, ts = f.bounds["val_start"], f.bounds["test_start"]
            seen = np.concatenate([f.train, f.val])
            assert len(np.intersect1d(f.train, f.val)) == 0 and len(np.intersect1d(seen, f.test)) == 0
            assert s.time[idx.reach[seen]].max() < ts
            assert embargoed_t[f.train].max() < vs and embargoed_t[f.val].max() < ts
            assert end_t[f.train].max() < vs <= end_t[f.val].min()
            assert end_t[f.test].min() >= ts
            assert not (read_rows(len(s), idx.ends[seen], length) & decided_rows(s, idx, f.test)).any()
            assert not (read_rows(len(s), idx.ends[f.train], length) & decided_rows(s, idx, f.val)).any()
    assert checked >= 35, checked  # the property was exercised, not skipped


def test_entity_folds_never_share_an_entity_randomised() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n_ent = int(rng.integers(4, 10))
        df = pd.concat([pd.DataFrame({"time": range(8), "unit": f"e{rng.integers(1000)}_{i}", "x": rng.normal(size=8),
                                      "sig": rng.integers(0, 2, size=8)}) for i in range(n_ent)])
        s = series_of(df.sample(frac=1.0, random_state=1), entity_col="unit", event_col="sig", horizon=1)
        idx = make_windows(s, 3)
        folds = make_folds(s, idx, SplitConfig(by="entity", folds=int(rng.integers(1, n_ent // 2 + 1)),
                                                val_fraction=0.3))
        ent = s.entity[idx.ends]
        for f in folds:
            parts = [set(ent[getattr(f, p)]) for p in ("train", "val", "test")]
            assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
            # test entities come later in order of first appearance than every training entity
            assert max(parts[0] | parts[1]) < min(parts[2])


# ---------------------------------------------------------------- the scaler


def test_training_rows_by_hand() -> None:
    # ends 2 and 7 with L=3 read rows 0..2 and 5..7
    eq(training_rows(np.array([2, 7]), 3, 10), [1, 1, 1, 0, 0, 1, 1, 1, 0, 0])
    # overlapping windows: ends 1, 2, 3 with L=2 read rows 0..3
    eq(training_rows(np.array([1, 2, 3]), 2, 6), [1, 1, 1, 1, 0, 0])
    eq(training_rows(np.array([4, 5]), 1, 6), [0, 0, 0, 0, 1, 1])
    eq(training_rows(np.array([], np.int64), 2, 3), [0, 0, 0])


def test_scaler_sees_only_rows_read_by_training_windows() -> None:
    # feature a = row for rows 0..9, then 1e6; feature b = 0 for rows 0..3, then 1e6
    a = np.where(np.arange(30) < 10, np.arange(30.0), 1e6)
    b = np.where(np.arange(30) < 4, 0.0, 1e6)
    df = thirty_rows(a).assign(b=b)
    s = series_of(df, event_col="event", horizon=2, features=["x", "b"])
    idx = make_windows(s, 2)
    fold = make_folds(s, idx, SplitConfig(folds=2, val_fraction=0.4))[0]
    eq(idx.ends[fold.train], [1, 2, 3])  # → rows 0..3 (see the table above)
    mean, scale = fit_scaler(s.features, idx.ends[fold.train], 2)
    # a over rows 0..3: mean 1.5, population variance (2.25+0.25+0.25+2.25)/4 = 1.25.
    # b over rows 0..3 is constant 0: mean 0 and StandardScaler's scale 1 (rows 4.., incl. val 5..7, excluded)
    np.testing.assert_allclose(mean, [1.5, 0.0])
    np.testing.assert_allclose(scale, [np.sqrt(1.25), 1.0], rtol=1e-6)
    fw = fold_windows(s, idx, fold, 2)
    np.testing.assert_allclose(fw.mean, mean)
    np.testing.assert_allclose(fw.scale, scale)
    # first test window ends at row 10 → rows 9, 10: a = 9, 1e6; b = 1e6, 1e6 — scaled with train stats only
    np.testing.assert_allclose(fw.test.gather(slice(0, 1))[0],
                               [[(9 - 1.5) / np.sqrt(1.25), 1e6], [(1e6 - 1.5) / np.sqrt(1.25), 1e6]], rtol=1e-6)
    assert fw.train.rows is fw.val.rows is fw.test.rows  # one scaled copy shared by the three parts
    eq(fw.train.ends, [1, 2, 3])
    eq(fw.test.y, idx.y[fold.test])
    assert not fw.train.synthetic.any()


def test_fold_positives_name_the_part_its_range_and_the_fix() -> None:
    # L=2, H=2 on thirty_rows: events at rows 4, 12, 20, 26 make windows 2, 3, 10, 11, 18, 19, 24, 25 positive.
    # Expanding, E=0 (EXPECTED above): fold 1 trains on 1..3 (2 positive), tests 10..18 (3);
    # fold 2 trains on 1..8 (2), tests 19..27 (3).
    series = series_of(thirty_rows(), time_col="time", event_col="event", horizon=2)
    index = make_windows(series, 2)
    folds = make_folds(series, index, SplitConfig(folds=2, val_fraction=0.4))
    assert check_fold_positives(series, index, folds, 2) == []
    assert check_fold_positives(series, index, folds, 3) == [
        "fold 1: the training part (windows ending 10 … 30, 3 windows) holds 2 positive window(s), fewer than "
        "data.min_positives = 3; use fewer folds (--folds), longer data, or a longer horizon (--horizon)",
        "fold 2: the training part (windows ending 10 … 80, 8 windows) holds 2 positive window(s), fewer than "
        "data.min_positives = 3; use fewer folds (--folds), longer data, or a longer horizon (--horizon)",
    ]


def test_fold_positives_by_entity_name_the_entities() -> None:
    frames = [pd.DataFrame({"time": np.arange(10), "unit": f"e{k}", "x": np.arange(10.0),
                            "y": [0, 0, 0, 0, 0, 1, 0, 0, 0, 0] if k < 2 else 0}) for k in range(4)]
    series = series_of(pd.concat(frames, ignore_index=True), time_col="time", entity_col="unit", label_col="y")
    index = make_windows(series, 3)
    folds = make_folds(series, index, SplitConfig(by="entity", folds=2))
    problems = check_fold_positives(series, index, folds, 1)
    # entity groups [e0, e1], [e2], [e3]: fold 1 tests e2, fold 2 tests e3, and neither has an event
    assert [p.split(" holds")[0] for p in problems] == [
        "fold 1: the test part (windows ending 2 … 9, entity e2, 8 windows)",
        "fold 2: the test part (windows ending 2 … 9, entity e3, 8 windows)",
    ]
    assert problems[0].endswith("use fewer folds (--folds) or longer data")


def test_scaler_fitted_in_chunks_matches_one_fit(monkeypatch) -> None:
    from sklearn.preprocessing import StandardScaler

    from lstm_core import splits

    rng = np.random.default_rng(3)
    rows = (rng.normal(size=(1000, 3)) * [1.0, 50.0, 1e-3] + [0.0, 7.0, -2.0]).astype(np.float32)
    rows[:, 2] = 4.0  # a constant feature keeps scale 1
    ends = np.array([40, 41, 300, 301, 302, 777])  # windows of 5 rows: 36..41, 296..302, 773..777
    reads = np.r_[36:42, 296:303, 773:778]
    expect = StandardScaler().fit(rows[reads])
    monkeypatch.setattr(splits, "SCALER_CHUNK_ROWS", 64)  # 16 chunks, most of them without a training row
    mean, scale = splits.fit_scaler(rows, ends, 5)
    np.testing.assert_allclose(mean, expect.mean_, rtol=1e-6)
    np.testing.assert_allclose(scale, expect.scale_, rtol=1e-6)
    assert scale[2] == 1.0
    with pytest.raises(ValueError, match="0 sample"):
        splits.fit_scaler(rows, np.array([], np.int64), 5)


def test_scale_rows_is_float32_and_leaves_its_input_alone() -> None:
    from lstm_core.splits import scale_rows

    rows = np.array([[1.0, 10.0], [3.0, 30.0]], np.float32)
    out = scale_rows(rows, np.array([2.0, 20.0], np.float32), np.array([1.0, 10.0], np.float32))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[-1.0, -1.0], [1.0, 1.0]])
    np.testing.assert_array_equal(rows, [[1.0, 10.0], [3.0, 30.0]])


# ---------------------------------------------------------------- calibration slice

# L=2, H=1 → windows end at rows 1..28. K=1 → 2 blocks of 14: cut at sorted position 28//2 = 14 → row 15.
# val_fraction = calibration_fraction = 0.25 over the part rows 1..14 (n = 14):
#   cal_start = sorted position int(14·0.75) = 10 → row 11; val_start = int(14·0.5) = 7 → row 8.
#   train: end+1 < 8 → 1..6; val: 8 ≤ end < 11 with end+1 < 11 → 8, 9;
#   calib: end ≥ 11 with end+1 < 15 → 11..13; purged: rows 7, 10, 14.
def test_calibration_slice_follows_validation_and_is_purged_like_it() -> None:
    s = series_of(thirty_rows(), event_col="event", horizon=1)
    idx = make_windows(s, 2)
    (fold,) = make_folds(s, idx, SplitConfig(folds=1, val_fraction=0.25, calibration_fraction=0.25))
    eq(idx.ends[fold.train], R(1, 6))
    eq(idx.ends[fold.val], [8, 9])
    eq(idx.ends[fold.calib], R(11, 13))
    eq(idx.ends[fold.test], R(15, 28))
    assert fold.purged == 3
    assert fold.bounds == {"val_start": 80, "cal_start": 110, "test_start": 150, "test_stop": 281}
    assert fold.parts() == ("train", "val", "calib", "test")


def test_no_calibration_fraction_means_no_calibration_slice() -> None:
    s = series_of(thirty_rows(), event_col="event", horizon=1)
    idx = make_windows(s, 2)
    (fold,) = make_folds(s, idx, SplitConfig(folds=1, val_fraction=0.25))
    assert len(fold.calib) == 0 and fold.parts() == ("train", "val", "test")
    eq(idx.ends[fold.val], R(11, 13))  # val_start = sorted position int(14·0.75) = 10 → row 11


# expanding, val = cal = 0.25: fold 1 trains on m7 m2 m9 (val 1, calib 1 entity), fold 2 on m7 m2 m9 m1 m5
def test_entity_calibration_slice_is_the_latest_entities() -> None:
    s = series_of(fleet(), entity_col="unit", event_col="event", horizon=1)
    idx = make_windows(s, 2)
    folds = make_folds(s, idx, SplitConfig(by="entity", folds=2, val_fraction=0.25, calibration_fraction=0.25))
    got = [[names(s, idx, getattr(f, p)) for p in ("train", "val", "calib", "test")] for f in folds]
    assert got == [[{"m7"}, {"m2"}, {"m9"}, {"m1", "m5"}], [{"m7", "m2", "m9"}, {"m1"}, {"m5"}, {"m3", "m8"}]]


def test_slices_must_leave_training_windows() -> None:
    with pytest.raises(ValueError, match="val_fraction \\+ split.calibration_fraction must stay below 1"):
        SplitConfig(val_fraction=0.5, calibration_fraction=0.5)


def test_calibration_chooses_the_threshold_and_validation_does_not() -> None:
    from lstm_core.evaluate import evaluate_fold
    from lstm_core.windows import WindowSet

    class Echo:  # scores each window by its last row's x
        name = "echo"

        def fit(self, train, val):
            pass

        def predict_proba(self, ws):
            return ws.rows[ws.ends, 0]

    rows = np.arange(12, dtype=np.float32)[:, None] / 10
    def ws(ends, y):
        ends = np.array(ends)
        return WindowSet(rows, ends, 1, np.array(y), ends, np.zeros(len(ends), bool))
    val, calib, test = ws([0, 1, 2, 3], [0, 1, 0, 1]), ws([4, 5, 6, 7], [0, 0, 1, 1]), ws([8, 9], [0, 1])
    # on calib the scores 0.4 0.5 | 0.6 0.7 separate at 0.6; on val (0 1 0 1) the best MCC cut is 0.3
    assert evaluate_fold(Echo(), val, val, test, calib=calib).threshold == pytest.approx(0.6)
    assert evaluate_fold(Echo(), val, val, test).threshold == pytest.approx(0.3)


# ---------------------------------------------------------------- tuning's inner folds

# L=2, H=1, windows end at rows 1..28; the first outer test block starts at or after time 150 (row 15).
# Inside: end < 15 and end+1 < 15 → rows 1..13. Two inner folds cut 13 windows at sorted positions 13//3 = 4
# and 26//3 = 8 → rows 5 and 9. val_fraction 0.5:
#   inner 1: part 1..4, val_start = position 2 → row 3: train end+1 < 3 → 1; val 3 with end+1 < 5 → 3; test 5..8
#   inner 2: part 1..8, val_start = position 4 → row 5: train 1..3; val 5..7 (8 reaches 9); test 9..13
def test_tuning_folds_read_only_windows_before_the_boundary() -> None:
    from lstm_core.splits import tuning_folds

    s = series_of(thirty_rows(), event_col="event", horizon=1)
    idx = make_windows(s, 2)
    cfg = SplitConfig(folds=3, val_fraction=0.5, calibration_fraction=0.2)
    inner = tuning_folds(s, idx, cfg, 2, before=150)
    got = [[list(idx.ends[getattr(f, p)]) for p in ("train", "val", "test")] for f in inner]
    assert got == [[[1], [3], R(5, 8)], [R(1, 3), R(5, 7), R(9, 13)]]
    assert all(len(f.calib) == 0 for f in inner)


def test_tuning_folds_by_entity_use_the_first_outer_block_only() -> None:
    from lstm_core.splits import tuning_folds

    s = series_of(fleet(), entity_col="unit", event_col="event", horizon=1)
    idx = make_windows(s, 2)
    (inner,) = tuning_folds(s, idx, SplitConfig(by="entity", folds=2, val_fraction=0.25), 1, before=3)
    assert [names(s, idx, getattr(inner, p)) for p in ("train", "val", "test")] == [{"m7"}, {"m2"}, {"m9"}]


def test_scaling_in_place_gives_the_same_bits_and_no_second_array() -> None:
    from lstm_core.splits import scale_rows

    rng = np.random.default_rng(5)
    rows = (rng.normal(size=(500, 4)) * [1.0, 30.0, 1e-3, 7.0]).astype(np.float32)
    mean, scale = np.float32([0.3, -2.0, 1e-4, 5.0]), np.float32([1.1, 29.0, 2e-3, 6.5])
    expected = scale_rows(rows, mean, scale)
    out = scale_rows(rows, mean, scale, in_place=True)
    assert out is rows and out.dtype == np.float32
    np.testing.assert_array_equal(out, expected)  # bit for bit, not approximately
    with pytest.raises(ValueError, match="float32"):
        scale_rows(rows.astype(np.float64), mean, scale, in_place=True)


def test_fold_windows_in_place_equals_the_copying_path() -> None:
    x = np.where(np.arange(30) < 10, np.arange(30.0), 1e6) + 0.37
    s = series_of(thirty_rows(x), event_col="event", horizon=2)
    idx = make_windows(s, 2)
    fold = make_folds(s, idx, SplitConfig(folds=2, val_fraction=0.4))[0]
    copied = fold_windows(s, idx, fold, 2)
    unscaled = s.features.copy()
    np.testing.assert_array_equal(s.features, unscaled)  # the copying path leaves the series alone
    scaled = fold_windows(s, idx, fold, 2, in_place=True)
    assert scaled.train.rows is s.features  # scaled where they lay: one row array, not two
    np.testing.assert_array_equal(scaled.train.rows, copied.train.rows)
    np.testing.assert_array_equal(scaled.mean, copied.mean)
    np.testing.assert_array_equal(scaled.scale, copied.scale)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(scaled, part).ends, getattr(copied, part).ends)
