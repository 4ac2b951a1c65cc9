"""Reading time columns and the missing-value policy, on hand-built rows with hand-computed answers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_core.data import DataError, DataSpec, apply_missing, read_times, time_to_int

HOUR = 3_600_000_000_000  # ns


def test_integer_steps_stay_integers_even_as_floats_with_gaps():
    times = read_times(pd.Series([3.0, np.nan, 5.0]))
    assert not times.is_datetime
    assert times.values.tolist() == [3, 0, 5] and times.valid.tolist() == [True, False, True]
    assert time_to_int(pd.Series(["1", "2", "10"]), "t") == (pytest.approx([1, 2, 10]), False)


def test_offsets_are_read_as_utc():
    local = ["2024-03-31T01:00:00+01:00", "2024-03-31T03:00:00+02:00", "2024-03-31T02:00Z"]
    values, is_datetime = time_to_int(pd.Series(local), "t")
    start = pd.Timestamp("2024-03-31T00:00:00Z").value
    assert is_datetime and (values - start).tolist() == [0, HOUR, 2 * HOUR]
    zones = read_times(pd.Series(local)).zones.tolist()
    assert zones == ["+01:00", "+02:00", "+00:00"]


def test_a_timezone_aware_column_is_read_as_utc():
    berlin = pd.Series(pd.date_range("2024-01-01", periods=2, freq="h", tz="Europe/Berlin"))
    values, _ = time_to_int(berlin, "t")
    assert values[0] == pd.Timestamp("2023-12-31T23:00:00Z").value


def test_times_with_and_without_an_offset_are_refused_with_lines():
    column = pd.Series(["2024-01-01 00:00", "2024-01-01 01:00+00:00", "2024-01-01 02:00"])
    assert read_times(column).mixed_zones
    with pytest.raises(DataError) as caught:
        time_to_int(column, "ts")
    assert str(caught.value) == (
        "column 'ts': mixed time zones: 1 time(s) carry a UTC offset (line 3, e.g. '2024-01-01 01:00+00:00') and "
        "2 carry none (lines 2, 4, e.g. '2024-01-01 00:00'); write every time with its offset, or every time in one "
        "zone without one"
    )


def test_a_date_is_not_mistaken_for_an_offset():
    assert read_times(pd.Series(["2024-01-05", "2024-01-06 10:00"])).zones.tolist() == [None, None]
    assert read_times(pd.Series(["2024-01-05 10:00-05:00"])).zones.tolist() == ["-05:00"]


def test_unparsable_and_missing_times_name_their_lines():
    with pytest.raises(DataError, match=r"column 't': 1 value\(s\) neither integer steps nor datetimes, e.g. "
                                        r"'soon' \(line 3\)"):
        time_to_int(pd.Series(["2024-01-01", "soon"]), "t")
    with pytest.raises(DataError, match=r"column 't': 1 missing time\(s\) at line 3"):
        time_to_int(pd.Series(["2024-01-01", None]), "t")


SPEC = DataSpec("time", "unit", ("x",), "y", "label", 0)


def holes() -> pd.DataFrame:
    """Entity A at times 1..5 with a hole of 3 (rows written out of time order), entity B starting with a hole."""
    return pd.DataFrame({
        "time": [1, 1, 3, 2, 2, 4, 5],
        "unit": ["A", "B", "A", "A", "B", "A", "A"],
        "x": [1.0, np.nan, np.nan, np.nan, 7.0, np.nan, 5.0],
        "y": [0, 0, 1, 0, 0, 1, 0],
    })


def test_ffill_fills_from_earlier_rows_of_the_same_entity_within_the_limit():
    df = holes()
    before = df.copy()
    out, report = apply_missing(df, SPEC, "ffill", limit=2)
    # A in time order: 1.0 (t1), nan (t2), nan (t3), nan (t4), 5.0 (t5) → t2, t3 filled with 1.0; t4 is past the
    # limit and is never filled from t5 (a later row). B's first row has no earlier value; A's is not used.
    assert out["x"].tolist() == [1.0, 1.0, 1.0, 7.0, 5.0]
    assert out["time"].tolist() == [1, 3, 2, 2, 5] and out["unit"].tolist() == ["A", "A", "A", "B", "A"]
    assert report == {"policy": "ffill", "missing_values": 4, "filled": 2, "dropped_rows": 2,
                      "dropped_lines": "lines 3, 7"}
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is untouched


def test_drop_removes_every_row_with_a_missing_feature():
    out, report = apply_missing(holes(), SPEC, "drop", limit=2)
    assert out["x"].tolist() == [1.0, 7.0, 5.0]
    assert report["dropped_rows"] == 4 and report["filled"] == 0 and report["dropped_lines"] == "lines 3, 4, 5, 7"


def test_error_names_the_column_and_lines():
    with pytest.raises(DataError) as caught:
        apply_missing(holes(), SPEC, "error", limit=2)
    assert str(caught.value) == ("column 'x': 4 missing value(s) at lines 3, 4, 5, 7; data.missing is 'error': set it "
                                 "to 'ffill' or 'drop' (--missing) to handle them")


def test_nothing_missing_leaves_rows_as_they_are():
    df = holes().dropna()
    out, report = apply_missing(df, SPEC, "error", limit=2)
    assert out["x"].tolist() == [1.0, 7.0, 5.0] and report["missing_values"] == 0


def test_with_values_replaces_dotted_fields_validates_and_leaves_the_original():
    from lstm_core.config import PipelineConfig, load_config

    base = load_config(None, {"window.length": "auto", "train.epochs": 7})
    derived = base.with_values({"window.length": 50, "resample.strategy": "smote", "model.hidden": 16})
    assert (derived.window.length, derived.resample.strategy, derived.model.hidden) == (50, "smote", 16)
    assert derived.train.epochs == 7 and base.window.length == "auto" and base.resample.strategy != "smote"
    assert isinstance(derived, PipelineConfig)
    with pytest.raises(ValueError, match="strategy"):
        base.with_values({"resample.strategy": "nope"})


# ---------------------------------------------------------------- memory: the same answers, fewer copies

def _shuffled_table(n: int = 60) -> tuple[pd.DataFrame, DataSpec]:
    rng = np.random.default_rng(11)
    df = pd.DataFrame({"unit": rng.choice(["b", "a", "c"], n), "t": rng.permutation(n),
                       "x": rng.normal(size=n), "k": rng.integers(0, 9, n), "z": rng.normal(size=n).astype(np.float32),
                       "y": rng.integers(0, 2, n)})
    return df, DataSpec("t", "unit", ("x", "k", "z"), "y", "label", 0)


@pytest.mark.parametrize("in_order", [False, True])
def test_to_series_consuming_the_frame_gives_the_same_arrays(in_order: bool) -> None:
    from lstm_core.data import to_series

    df, spec = _shuffled_table()
    if in_order:
        df = df.assign(unit="a", t=np.arange(len(df)))
    expected = to_series(df.copy(), spec)
    # what the layout was before it went column by column: one interleaved copy, reordered
    order = np.lexsort((df["t"].to_numpy(), pd.factorize(df["unit"])[0]))
    np.testing.assert_array_equal(expected.features, df.loc[:, ["x", "k", "z"]].to_numpy(np.float32)[order])
    given = df.copy()
    got = to_series(given, spec, consume=True)
    assert got.features.dtype == np.float32 and got.features.flags.c_contiguous
    for name in ("features", "target", "time", "entity"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name))
    assert list(given.columns) == ["unit", "t", "y"]  # the feature columns were freed as they were copied
    assert list(df.columns) == ["unit", "t", "x", "k", "z", "y"]  # without consume, nothing is touched


TO_SERIES_PEAK_PROBE = """
import threading, time, numpy as np, pandas as pd
from lstm_core.data import DataSpec, to_series

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

n, width = 2_000_000, 16  # float64 columns: 256 MB of table, 128 MB of float32 features
rng = np.random.default_rng(0)
columns = {"t": np.arange(n), "y": np.zeros(n, np.int8), **{f"f{i}": rng.standard_normal(n) for i in range(width)}}
df = pd.concat([pd.DataFrame({k: v}) for k, v in columns.items()], axis=1)  # one block per column, as Parquet gives
del columns
base, peak, done = rss_mb(), [0.0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss_mb())
        time.sleep(0.001)
sampler = threading.Thread(target=sample)
sampler.start()
series = to_series(df, DataSpec("t", None, tuple(f"f{i}" for i in range(width)), "y", "label", 0), consume=True)
done.set()
sampler.join()
print(base, peak[0], series.features.flags.c_contiguous)
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux)")
def test_to_series_consuming_a_float64_table_never_holds_the_table_and_the_features_whole_side_by_side() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", TO_SERIES_PEAK_PROBE], capture_output=True, text=True, check=True)
    base, peak, contiguous = out.stdout.split()
    # the table (256 MB) is already resident: filling a C-ordered array column by column added all 128 MB of
    # features on top of it; built by rows of (F, N) and transposed, the peak is twice the features, 256 MB
    assert float(peak) - float(base) < 110, (base, peak)  # measured: 59 MB here, 173 MB filled row-major
    assert contiguous == "True"


def test_fingerprint_in_row_chunks_equals_the_whole_table_at_once(monkeypatch) -> None:
    import hashlib

    from lstm_core import data

    df, spec = _shuffled_table(50)
    df["unit"] = df["unit"].astype("category")
    cols = list(spec.required)
    digest = hashlib.sha256(",".join(cols).encode())
    digest.update(pd.util.hash_pandas_object(df[cols], index=False).to_numpy().tobytes())
    monkeypatch.setattr(data, "FINGERPRINT_CHUNK_ROWS", 7)  # 8 chunks, the last one short
    got = data.fingerprint(df, spec)
    assert got == {"hash": digest.hexdigest()[:16], "rows": 50, "positives": int(df["y"].sum())}


def test_missing_values_are_counted_per_column_as_before() -> None:
    df, spec = _shuffled_table(20)
    df.loc[[3, 4], "x"] = np.nan
    df.loc[[4], "z"] = np.nan
    _, report = apply_missing(df, spec, "drop", 0)
    assert report["missing_values"] == 3 and report["dropped_rows"] == 2
    _, clean = apply_missing(df.dropna(), spec, "error", 0)
    assert clean["missing_values"] == 0
