"""Bundled datasets: measured counts, schema, determinism, label arithmetic and no imputed events."""

from __future__ import annotations

import pandas as pd
import pytest

from lstm_core.datasets import (
    SENSOR_COLUMNS,
    CmapssFD001,
    cmapss,
    last_window_test_protocol,
    load_beijing_pm25,
    load_cmapss_fd001,
)

CMAPSS_COLUMNS = ["engine", "cycle", *SENSOR_COLUMNS, "rul", "label"]
BEIJING_COLUMNS = [
    "time", "pm25", "DEWP", "TEMP", "PRES", "Iws", "Is", "Ir",
    "wind_NE", "wind_NW", "wind_SE", "wind_cv", "event",
]  # fmt: skip
BEIJING_KEPT_ROWS = 42_143  # measured: 43,824 raw hours, ffill(limit=3), rows still missing pm2.5 dropped


@pytest.fixture(scope="module")
def fd001() -> CmapssFD001:
    return load_cmapss_fd001()


@pytest.fixture(scope="module")
def beijing() -> pd.DataFrame:
    return load_beijing_pm25()


@pytest.fixture(scope="module")
def beijing_observed() -> pd.DataFrame:
    return load_beijing_pm25(ffill_limit=0)


def test_sensor_columns() -> None:
    assert SENSOR_COLUMNS == ["setting1", "setting2", "setting3"] + [f"s{i}" for i in range(1, 22)]


@pytest.mark.parametrize("split", ["train", "test"])
def test_cmapss_schema(fd001: CmapssFD001, split: str) -> None:
    frame = getattr(fd001, split)
    assert list(frame.columns) == CMAPSS_COLUMNS
    ints = ["engine", "cycle", "rul", "label"]
    assert all(str(frame[c].dtype) == "int64" for c in ints)
    assert all(str(frame[c].dtype) == "float64" for c in SENSOR_COLUMNS)
    assert frame.equals(frame.sort_values(["engine", "cycle"]).reset_index(drop=True))
    assert set(frame["label"].unique()) <= {0, 1}


def test_cmapss_measured_counts(fd001: CmapssFD001) -> None:
    train, test = fd001.train, fd001.test
    assert (len(train), train["engine"].nunique(), int(train["label"].sum())) == (20_631, 100, 3_100)
    assert (len(test), test["engine"].nunique(), int(test["label"].sum())) == (13_096, 100, 332)
    assert int(test.groupby("engine")["label"].last().sum()) == 25
    constant = [c for c in SENSOR_COLUMNS if train[c].nunique() == 1]
    assert constant == ["setting3", "s1", "s5", "s10", "s16", "s18", "s19"]


def test_cmapss_rul_arithmetic(fd001: CmapssFD001) -> None:
    assert (fd001.train.groupby("engine")["rul"].min() == 0).all()  # every training engine runs to failure
    last = fd001.test.groupby("engine").tail(1).set_index("engine")
    assert int(last.loc[1, "rul"]) == 112  # first value of RUL_FD001
    assert ((fd001.test["rul"] <= 30) == (fd001.test["label"] == 1)).all()


def test_cmapss_failure_within_changes_labels_only() -> None:
    other = load_cmapss_fd001(failure_within=10)
    assert int(other.train["label"].sum()) == 100 * 11  # rul 0..10 on each run-to-failure engine
    with pytest.raises(ValueError):
        load_cmapss_fd001(failure_within=-1)


def test_last_window_protocol(fd001: CmapssFD001) -> None:
    kept = last_window_test_protocol(fd001.test)
    assert kept["engine"].nunique() == 93
    assert (kept.groupby("engine").size() >= 50).all()
    assert int(kept.groupby("engine")["label"].last().sum()) == 25
    assert list(kept.columns) == CMAPSS_COLUMNS


def test_beijing_schema_and_counts(beijing: pd.DataFrame, beijing_observed: pd.DataFrame) -> None:
    assert list(beijing.columns) == BEIJING_COLUMNS
    assert str(beijing["time"].dtype) == "datetime64[ns]" and beijing["time"].dt.tz is None
    assert str(beijing["event"].dtype) == "int64"
    assert all(str(beijing[c].dtype) == "float64" for c in BEIJING_COLUMNS[1:-1])
    assert (beijing.filter(like="wind_").sum(axis=1) == 1.0).all()
    assert len(beijing) == BEIJING_KEPT_ROWS and beijing["pm25"].notna().all()
    assert beijing["time"].is_monotonic_increasing
    assert int(beijing["event"].sum()) == 1_773
    assert len(beijing_observed) == 43_824 - 2_067  # observed hours only


def test_beijing_event_never_uses_imputed_value(
    beijing: pd.DataFrame, beijing_observed: pd.DataFrame
) -> None:
    merged = beijing.merge(beijing_observed[["time", "pm25"]], on="time", how="left", suffixes=("", "_obs"))
    imputed = merged["pm25_obs"].isna()
    assert (merged.loc[imputed, "pm25"] >= 300).any()  # the test would be vacuous otherwise
    assert (merged.loc[imputed, "event"] == 0).all()
    observed = merged[~imputed]
    assert (observed["pm25"] == observed["pm25_obs"]).all()
    assert ((observed["pm25"] >= 300).astype("int64") == observed["event"]).all()


def test_beijing_ffill_only_from_the_past(beijing: pd.DataFrame, beijing_observed: pd.DataFrame) -> None:
    source = beijing_observed[["time", "pm25"]].rename(columns={"time": "source_time", "pm25": "source"})
    past = pd.merge_asof(beijing, source, left_on="time", right_on="source_time", direction="backward")
    assert (past["pm25"] == past["source"]).all()  # every value is the latest observed value at or before t
    assert (past["time"] - past["source_time"]).max() == pd.Timedelta(hours=3)  # ffill_limit=3
    # The first day is missing and has no past to fill from, so the series starts a day late.
    assert beijing["time"].min() == pd.Timestamp("2010-01-02")
    assert beijing["time"].diff().max() > pd.Timedelta(hours=1)  # dropped hours leave gaps


def test_loading_twice_gives_equal_frames(fd001: CmapssFD001, beijing: pd.DataFrame) -> None:
    again = load_cmapss_fd001()
    pd.testing.assert_frame_equal(again.train, fd001.train)
    pd.testing.assert_frame_equal(again.test, fd001.test)
    pd.testing.assert_frame_equal(load_beijing_pm25(), beijing)


def test_corrupted_bundle_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(cmapss._FILES_SHA256, "RUL_FD001.txt.gz", "0" * 64)
    with pytest.raises(RuntimeError, match="RUL_FD001.txt.gz"):
        load_cmapss_fd001()
