"""Windows and their targets, checked against hand-computed ends, targets, last_seen and reach."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_core.config import DataConfig
from lstm_core.data import DataError, Series, resolve_spec, to_series
from lstm_core.windows import WindowSet, gap_limit, last_per_entity, make_windows, window_ends, window_set


def series_of(df: pd.DataFrame, **cfg) -> Series:
    """A Series through the public path: DataConfig → resolve_spec → to_series."""
    return to_series(df, resolve_spec(df, DataConfig(**cfg)))


def eq(a, b) -> None:
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ---------------------------------------------------------------- label mode

LABELS = [0, 1, 0, 0, 1, 1]  # rows 0..5 of one entity


def label_frame() -> pd.DataFrame:
    return pd.DataFrame({"time": range(6), "x": np.arange(10.0, 16.0), "label": LABELS})


def test_label_mode_target_is_label_at_t() -> None:
    s = series_of(label_frame(), label_col="label")
    idx = make_windows(s, 3)
    # L=3: first full window ends at row 2; last at row 5 (label mode needs no tail)
    eq(idx.ends, [2, 3, 4, 5])
    # y = label[t] for t = 2..5 → LABELS[2:6]
    eq(idx.y, [0, 0, 1, 1])
    # lookahead 0: last_seen = label[t-1] = LABELS[1:5]
    eq(idx.last_seen, [1, 0, 0, 1])
    # reach = min(t + 0, last row 5) = t
    eq(idx.reach, [2, 3, 4, 5])


@pytest.mark.parametrize(
    ("lookahead", "last_seen", "reach"),
    [
        # label[t-2] for t=2..5: label[0..3] = 0,1,0,0; reach = min(t+1, 5)
        (1, [0, 1, 0, 0], [3, 4, 5, 5]),
        # label[t-3]: t=2 → row -1 is before the entity start → 0; t=3..5 → label[0..2] = 0,1,0; reach min(t+2,5)
        (2, [0, 0, 1, 0], [4, 5, 5, 5]),
    ],
)
def test_label_mode_last_seen_and_reach_with_lookahead(lookahead, last_seen, reach) -> None:
    s = series_of(label_frame(), label_col="label", label_lookahead=lookahead)
    idx = make_windows(s, 3)
    eq(idx.ends, [2, 3, 4, 5])
    eq(idx.y, [0, 0, 1, 1])  # the lookahead never changes the target: still label[t]
    eq(idx.last_seen, last_seen)
    eq(idx.reach, reach)


def test_label_mode_last_seen_is_zero_at_an_entity_start() -> None:
    # entity p: labels 1,1 (rows 0,1); entity q: labels 0,0,1 (rows 2..4). L=1, lookahead 0.
    df = pd.DataFrame({"time": [0, 1, 0, 1, 2], "unit": ["p", "p", "q", "q", "q"],
                       "x": [0.0] * 5, "label": [1, 1, 0, 0, 1]})
    idx = make_windows(series_of(df, label_col="label", entity_col="unit"), 1)
    eq(idx.ends, [0, 1, 2, 3, 4])
    eq(idx.y, [1, 1, 0, 0, 1])
    # last_seen = label[t-1] of the SAME entity: row 0 → none (0); row 1 → 1; row 2 is q's first row,
    # row 1 belongs to p → 0 (not p's 1); row 3 → 0; row 4 → 0
    eq(idx.last_seen, [0, 1, 0, 0, 0])


# ---------------------------------------------------------------- event mode

EVENTS = [0, 0, 1, 0, 0, 0, 1, 0]  # rows 0..7


def test_event_mode_target_looks_at_the_next_h_rows() -> None:
    df = pd.DataFrame({"time": range(8), "x": np.arange(8.0), "event": EVENTS})
    idx = make_windows(series_of(df, event_col="event", horizon=2), 2)
    # L=2 → t >= 1; H=2 → t + 2 <= 7 → t <= 5 (t=6,7 dropped: horizon runs past the last row)
    eq(idx.ends, [1, 2, 3, 4, 5])
    # t=1: e[2..3]=1,0 → 1; t=2: e[3..4] → 0; t=3: e[4..5] → 0; t=4: e[5..6]=0,1 → 1; t=5: e[6..7] → 1
    eq(idx.y, [1, 0, 0, 1, 1])
    # the event at t itself is not the target (t=2 has e[2]=1 but y=0); it is last_seen = e[t]
    eq(idx.last_seen, [0, 1, 0, 0, 0])
    eq(idx.reach, [3, 4, 5, 6, 7])  # t + H


def test_event_mode_horizon_one_and_long_window() -> None:
    df = pd.DataFrame({"time": range(8), "x": np.arange(8.0), "event": EVENTS})
    idx = make_windows(series_of(df, event_col="event", horizon=1), 4)
    # L=4 → t >= 3; H=1 → t <= 6. y = e[t+1]: e[4], e[5], e[6], e[7] = 0,0,1,0
    eq(idx.ends, [3, 4, 5, 6])
    eq(idx.y, [0, 0, 1, 0])
    eq(idx.reach, [4, 5, 6, 7])


def test_no_window_when_entity_shorter_than_window_plus_horizon() -> None:
    df = pd.DataFrame({"time": range(4), "x": np.zeros(4), "event": [0, 1, 1, 1]})
    # L=3 needs t >= 2, H=2 needs t <= 1 → nothing
    idx = make_windows(series_of(df, event_col="event", horizon=2), 3)
    assert len(idx.ends) == 0 and idx.y.dtype == np.int8


# ---------------------------------------------------------------- entities


def two_entity_frame() -> pd.DataFrame:
    """Entity b (times 0..4) appears first in the file, then a (times 0..3); rows are shuffled.

    x = 100 + time for b, 200 + time for a, so every gathered value tells where it came from.
    """
    b = pd.DataFrame({"t": range(5), "unit": "b", "x": 100.0 + np.arange(5), "ev": [0, 0, 0, 1, 0]})
    a = pd.DataFrame({"t": range(4), "unit": "a", "x": 200.0 + np.arange(4), "ev": [0, 0, 1, 0]})
    both = pd.concat([b, a], ignore_index=True)
    # file order: b3 first (so b is the first entity seen), then a mix with times out of order
    order = [3, 7, 0, 5, 8, 1, 4, 6, 2]
    return both.iloc[order].reset_index(drop=True)


def test_two_entities_order_of_first_appearance_and_sorted_time() -> None:
    s = series_of(two_entity_frame(), time_col="t", entity_col="unit", event_col="ev", horizon=1)
    assert s.entity_names == ["b", "a"]  # first appearance, not alphabetical
    eq(s.entity, [0, 0, 0, 0, 0, 1, 1, 1, 1])
    eq(s.time, [0, 1, 2, 3, 4, 0, 1, 2, 3])  # time-sorted inside each entity despite the shuffle
    eq(s.features[:, 0], [100, 101, 102, 103, 104, 200, 201, 202, 203])
    eq(s.target, [0, 0, 0, 1, 0, 0, 0, 1, 0])
    eq(s.starts, [0, 5])
    eq(s.stops, [5, 9])


def test_windows_never_cross_entities() -> None:
    s = series_of(two_entity_frame(), time_col="t", entity_col="unit", event_col="ev", horizon=1)
    idx = make_windows(s, 2)
    # b = rows 0..4: t in 1..3 (t>=0+1, t+1<=4); a = rows 5..8: t in 6..7.
    # Row 4 (b's last) has no next row of b; row 5 (a's first) would read b's row 4 → both absent.
    eq(idx.ends, [1, 2, 3, 6, 7])
    # b: e[2], e[3], e[4] = 0,1,0; a: e[7], e[8] = 1,0
    eq(idx.y, [0, 1, 0, 1, 0])
    eq(idx.last_seen, [0, 0, 1, 0, 1])  # event[t]
    eq(idx.reach, [2, 3, 4, 7, 8])
    ws = window_set(s.features, idx, 2)
    x = ws.gather()[:, :, 0]  # (5, L=2): window ending at row t reads rows t-1, t
    eq(x, [[100, 101], [101, 102], [102, 103], [200, 201], [201, 202]])
    # every window holds rows of one entity: the hundreds digit is constant within a window
    assert np.all(x[:, 0] // 100 == x[:, -1] // 100)


def test_last_per_entity_skips_entities_without_a_window() -> None:
    # b has 3 rows, c has 1 (too short for L=2), a has 2
    df = pd.DataFrame({"time": [0, 1, 2, 0, 5, 6], "unit": ["b", "b", "b", "c", "a", "a"],
                       "x": np.zeros(6), "label": [0, 1, 0, 1, 1, 0]})
    s = series_of(df, label_col="label", entity_col="unit")
    idx = make_windows(s, 2)
    # rows: b 0..2, c 3, a 4..5 → windows end at 1, 2 (b) and 5 (a)
    eq(idx.ends, [1, 2, 5])
    eq(last_per_entity(s, idx), [1, 2])  # positions of b's row 2 and a's row 5


# ---------------------------------------------------------------- max_gap


def test_max_gap_with_integer_time() -> None:
    df = pd.DataFrame({"time": [0, 1, 2, 5, 6, 7], "x": np.zeros(6), "label": [0] * 6})
    s = series_of(df, label_col="label")
    eq(make_windows(s, 2).ends, [1, 2, 3, 4, 5])  # no max_gap: every row from 1
    # gap 2→5 is 3 > 2: the window of rows (2, 3) spans it and is dropped
    eq(make_windows(s, 2, max_gap=2).ends, [1, 2, 4, 5])
    eq(make_windows(s, 2, max_gap=3).ends, [1, 2, 3, 4, 5])  # 3 is not larger than 3
    # L=3: rows (0-2) ok, (1-3) and (2-4) span the gap, (3-5) ok
    eq(make_windows(s, 3, max_gap=2).ends, [2, 5])
    eq(make_windows(s, 3, max_gap="2").ends, [2, 5])  # a numeric string is a number
    with pytest.raises(DataError, match="integer steps; give a number"):
        make_windows(s, 2, max_gap="2h")


def test_max_gap_with_datetimes() -> None:
    times = ["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00", "2024-01-01 05:00", "2024-01-01 06:00"]
    df = pd.DataFrame({"ts": times, "x": np.zeros(5), "label": [0] * 5})
    s = series_of(df, time_col="ts", label_col="label")
    assert s.time_is_datetime
    assert gap_limit("2h", True) == 2 * 3600 * 10**9  # ns
    # hourly steps then a 3h gap between rows 2 and 3: the window (2, 3) spans it
    eq(make_windows(s, 2, max_gap="2h").ends, [1, 2, 4])
    eq(make_windows(s, 2, max_gap="3h").ends, [1, 2, 3, 4])
    eq(make_windows(s, 2, max_gap="90min").ends, [1, 2, 4])
    with pytest.raises(DataError, match=r"max_gap=2: the time column holds datetimes; give a duration such as '2h'"):
        make_windows(s, 2, max_gap=2)


def test_max_gap_is_ignored_for_one_row_windows() -> None:
    df = pd.DataFrame({"time": [0, 10, 20], "x": np.zeros(3), "label": [0, 0, 0]})
    eq(make_windows(series_of(df, label_col="label"), 1, max_gap=1).ends, [0, 1, 2])  # nothing to span


def test_window_ends_tail() -> None:
    df = pd.DataFrame({"time": range(6), "x": np.zeros(6), "label": [0] * 6})
    s = series_of(df, label_col="label")
    # L=2 and two rows after t: t in 1..3
    eq(window_ends(s, 2, tail=2), [1, 2, 3])


# ---------------------------------------------------------------- WindowSet


def test_gather_equals_explicit_slices() -> None:
    rows = np.arange(36, dtype=np.float32).reshape(12, 3)  # (N=12, F=3), row i = 3i, 3i+1, 3i+2
    ws = WindowSet(rows, np.array([2, 5, 11]), 3, np.array([0, 1, 0], np.int8),
                   np.zeros(3, np.int8), np.zeros(3, bool))
    got = ws.gather()
    assert got.shape == (3, 3, 3)  # (B, L, F)
    eq(got, np.stack([rows[0:3], rows[3:6], rows[9:12]]))
    eq(got[1, :, 0], [9, 12, 15])  # rows 3, 4, 5 → first feature 3·3, 3·4, 3·5
    eq(ws.gather(np.array([2, 0])), np.stack([rows[9:12], rows[0:3]]))
    eq(ws.gather(slice(1, 3)), np.stack([rows[3:6], rows[9:12]]))


def test_windowset_memory_is_o_rows_and_subset_shares_rows() -> None:
    n_rows, f, length = 1000, 2, 100
    rows = np.random.default_rng(0).normal(size=(n_rows, f)).astype(np.float32)
    df = pd.DataFrame({"time": range(n_rows), "a": rows[:, 0], "b": rows[:, 1], "label": np.zeros(n_rows, int)})
    s = series_of(df, label_col="label")
    idx = make_windows(s, length)
    ws = window_set(s.features, idx, length)
    assert len(ws) == n_rows - length + 1  # 901
    assert ws.rows is s.features  # not copied
    held = ws.rows.nbytes + ws.ends.nbytes + ws.y.nbytes + ws.last_seen.nbytes + ws.synthetic.nbytes
    dense = len(ws) * length * f * 4  # what an (n, L, F) float32 tensor would cost: 720 800 bytes
    assert held < n_rows * f * 4 + len(ws) * 16  # O(rows): 8 000 + 901·(8+1+1+1) bytes
    assert held * 10 < dense
    sub = ws.subset(np.array([0, 5, 900]))
    assert np.shares_memory(sub.rows, ws.rows) and sub.rows is ws.rows
    eq(sub.ends, ws.ends[[0, 5, 900]])
    eq(sub.gather(), ws.gather(np.array([0, 5, 900])))
    assert sub.gather().shape == (3, length, f)
    with pytest.raises(ValueError, match="one transformed row per original row"):
        ws.with_rows(rows[:-1])
    scaled = ws.with_rows(rows * 2)
    eq(scaled.ends, ws.ends)
    eq(scaled.gather(slice(0, 1)), ws.gather(slice(0, 1)) * 2)


def test_from_dense_round_trip() -> None:
    x = np.random.default_rng(1).normal(size=(4, 3, 2)).astype(np.float32)  # (n=4, L=3, F=2)
    ws = WindowSet.from_dense(x, y=[0, 1, 0, 1], synthetic=[False, False, True, True])
    assert ws.rows.shape == (12, 2) and ws.length == 3
    eq(ws.ends, [2, 5, 8, 11])  # i·L + L − 1
    eq(ws.gather(), x)
    eq(ws.y, [0, 1, 0, 1])
    assert ws.y.dtype == np.int8
    eq(ws.last_seen, [0, 0, 0, 0])  # default
    eq(ws.synthetic, [False, False, True, True])
    eq(ws.subset(np.array([3, 1])).gather(), x[[3, 1]])


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux)")
def test_mapped_rows_drop_their_resident_pages_and_read_back_the_same(tmp_path) -> None:
    from lstm_core.windows import drop_mapped_pages

    def resident_bytes() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    rows = np.random.default_rng(0).normal(size=(2_000_000, 16)).astype(np.float32)  # 122 MiB
    np.save(tmp_path / "rows.npy", rows)
    mapped = np.load(tmp_path / "rows.npy", mmap_mode="r").view(np.ndarray)  # as the workspace maps a fold's rows
    before = resident_bytes()
    assert float(mapped.sum(dtype=np.float64)) == float(rows.sum(dtype=np.float64))  # every page read
    touched = resident_bytes()
    assert touched - before > 100 << 20
    assert drop_mapped_pages(mapped) and drop_mapped_pages(mapped[10:20])  # the array, or any view of it
    assert touched - resident_bytes() > 100 << 20
    np.testing.assert_array_equal(mapped, rows)  # faulted back from the file: the same bytes

    assert not drop_mapped_pages(rows)  # in memory: nothing to drop
    private = np.load(tmp_path / "rows.npy", mmap_mode="c")  # copy-on-write: dropping would lose writes
    private[0, 0] = 7.0
    assert not drop_mapped_pages(private) and private[0, 0] == 7.0
