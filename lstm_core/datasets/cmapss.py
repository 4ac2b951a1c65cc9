"""NASA C-MAPSS turbofan FD001, bundled: run-to-failure training engines and truncated test engines.

The rare event is "the engine fails within ``failure_within`` cycles": ``label = rul <= failure_within``.
Train RUL = the engine's last cycle - cycle (every training engine runs to failure).
Test RUL = (last test cycle + the engine's value in ``RUL_FD001``) - cycle.
Source, checksums and measured facts: ``lstm_core/datasets/data/PROVENANCE.md``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstm_core.datasets._bundled import read_bundled

SENSOR_COLUMNS: list[str] = ["setting1", "setting2", "setting3"] + [f"s{i}" for i in range(1, 22)]
FAILURE_WITHIN = 30
PROTOCOL_WINDOW = 50

COLUMNS: list[str] = ["engine", "cycle", *SENSOR_COLUMNS, "rul", "label"]

_FILES_SHA256: dict[str, str] = {
    "train_FD001.txt.gz": "963b5e22825b34d8b21c69e1aeb4af3e647050eb672ee8834ba4b5d91d2de0f8",
    "test_FD001.txt.gz": "3cda7109ce17bafb5443f2ac926cfcf88154b941b8c4cf95eb55d1ddd6f52851",
    "RUL_FD001.txt.gz": "a19c8ec94931949d0485bdc35118206e9c81c4547b422efb9cf86f4ceddbceca",
}


@dataclass(frozen=True)
class CmapssFD001:
    """FD001 as two labelled frames with columns ``COLUMNS``, sorted by engine then cycle."""

    train: pd.DataFrame  # run-to-failure engines
    test: pd.DataFrame  # truncated engines, labels from RUL_FD001


def _read_table(name: str) -> pd.DataFrame:
    """Parse a whitespace-separated, headerless FD001 file (lines end in trailing spaces)."""
    return pd.read_csv(io.BytesIO(read_bundled(name, _FILES_SHA256[name])), sep=r"\s+", header=None)


def _read_engines(name: str) -> pd.DataFrame:
    """Read train or test rows with typed columns engine, cycle, settings and sensors."""
    frame = _read_table(name)
    if frame.shape[1] != 2 + len(SENSOR_COLUMNS):
        raise ValueError(f"{name}: expected {2 + len(SENSOR_COLUMNS)} columns, found {frame.shape[1]}")
    frame.columns = ["engine", "cycle", *SENSOR_COLUMNS]
    frame = frame.astype({"engine": np.int64, "cycle": np.int64, **dict.fromkeys(SENSOR_COLUMNS, np.float64)})
    return frame.sort_values(["engine", "cycle"], kind="stable").reset_index(drop=True)


def _with_labels(frame: pd.DataFrame, failure_cycle: pd.Series, failure_within: int) -> pd.DataFrame:
    """Add rul (cycles left before the engine's failure cycle) and the binary rare-event label."""
    failure = frame["engine"].map(failure_cycle).to_numpy(dtype=np.int64)
    rul = failure - frame["cycle"].to_numpy(dtype=np.int64)
    if (rul < 0).any():
        raise ValueError("negative RUL: a cycle lies after its engine's failure cycle")
    out = frame.assign(rul=rul, label=(rul <= failure_within).astype(np.int64))
    return out[COLUMNS]


def _test_failure_cycles(test: pd.DataFrame) -> pd.Series:
    """Failure cycle of each test engine: its last observed cycle plus the true RUL from RUL_FD001."""
    last_cycle = test.groupby("engine")["cycle"].max()
    truth = _read_table("RUL_FD001.txt.gz").iloc[:, 0].to_numpy(dtype=np.int64)
    if len(truth) != len(last_cycle):
        raise ValueError(f"RUL_FD001 has {len(truth)} values for {len(last_cycle)} test engines")
    # Row i of RUL_FD001 belongs to engine i + 1 (engines are numbered 1..100).
    truth_by_engine = pd.Series(truth, index=np.arange(1, len(truth) + 1, dtype=np.int64))
    return last_cycle + truth_by_engine.reindex(last_cycle.index)


def load_cmapss_fd001(failure_within: int = FAILURE_WITHIN) -> CmapssFD001:
    """Load FD001 from the bundled files, labelled 1 where the engine fails within ``failure_within`` cycles."""
    if failure_within < 0:
        raise ValueError(f"failure_within must be >= 0, got {failure_within}")
    train = _read_engines("train_FD001.txt.gz")
    test = _read_engines("test_FD001.txt.gz")
    train_failure = train.groupby("engine")["cycle"].max()
    return CmapssFD001(
        train=_with_labels(train, train_failure, failure_within),
        test=_with_labels(test, _test_failure_cycles(test), failure_within),
    )


def last_window_test_protocol(test: pd.DataFrame, window: int = PROTOCOL_WINDOW) -> pd.DataFrame:
    """Keep every row of the test engines with >= ``window`` cycles, for the published last-window protocol.

    The published FD001 results (Azure "Deep Learning Basics for Predictive Maintenance", umbertogriffo
    "Predictive-Maintenance-using-LSTM") score the LAST 50-cycle window of each test engine that has at
    least 50 cycles: 93 engines, 25 of whose last windows are positive. All rows of those engines are
    returned so a windowing routine can cut the last window itself; its label is the label of the last cycle.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    length = test.groupby("engine")["cycle"].transform("size")
    return test[length >= window].reset_index(drop=True)
