"""A corpus of bad telemetry files, each run through `lstm-pipeline train` as a user would.

Every case must end with a message naming the column, the lines or the file, and must leave no model version in
the registry and the input file byte for byte as it was. Most cases stop while loading or validating, so they
cost seconds; the fold case stops after splitting, before any training.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from lstm_app.cli import app
from lstm_pipeline import settings
from tests.conftest import make_telemetry

pytestmark = pytest.mark.usefixtures("prefect_harness")

FLAGS = ["--time-col", "timestamp", "--entity-col", "machine", "--event-col", "failure", "--horizon", "3",
         "--window", "8", "--folds", "2", "--epochs", "1", "--batch-size", "64", "--model-name", "corpus-lstm"]


def csv(frame: pd.DataFrame, **kwargs) -> Callable[[Path], None]:
    return lambda path: frame.to_csv(path, index=False, **kwargs)


def raw(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def sparse(size: int) -> Callable[[Path], None]:
    def write(path: Path) -> None:
        with path.open("wb") as fh:  # a hole, not 2 GB of bytes
            fh.truncate(size)
    return write


def latin1(path: Path) -> None:
    text = make_telemetry().to_csv(index=False).replace(",m1,", ",m\xe9,")
    path.write_bytes(text.encode("latin-1"))


def edit(**changes) -> pd.DataFrame:
    """The clean telemetry with cells set: {column: {row: value}}."""
    frame = make_telemetry()
    for column, cells in changes.items():
        if any(isinstance(v, str) for v in cells.values()):
            frame[column] = frame[column].astype(object)
        for row, value in cells.items():
            frame.loc[row, column] = value
    return frame


def backward() -> pd.DataFrame:
    frame = make_telemetry()
    frame.loc[[10, 11], "timestamp"] = frame.loc[[11, 10], "timestamp"].to_numpy()
    return frame


def mixed_zones() -> pd.DataFrame:
    frame = make_telemetry()
    stamps = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    frame["timestamp"] = np.where(frame["machine"] == "m1", stamps + "+00:00", stamps)
    return frame


def short_entities() -> pd.DataFrame:
    frame = make_telemetry().groupby("machine").head(9).reset_index(drop=True)
    frame.loc[[4, 13], "failure"] = 1
    return frame


def late_events_only_early() -> pd.DataFrame:
    frame = make_telemetry()
    frame.loc[frame.groupby("machine").cumcount() >= 50, "failure"] = 0  # events only in the first third
    return frame


CASES = {
    "empty file": (raw(b""), "the file is empty (0 bytes)"),
    "header only": (raw(b"timestamp,machine,temp,vibration,failure\n"), "a header with 5 column(s) but no data rows"),
    "wrong delimiter": (csv(make_telemetry(), sep=";"),
                        "it looks like ';'-separated: set data.sep: ';' in the config (or --sep ';')"),
    "undecodable bytes": (latin1, "not UTF-8 text: byte 0xe9 at line 162 cannot be decoded"),
    "missing label column": (csv(make_telemetry().drop(columns="failure")), "column(s) ['failure'] not found"),
    "label values 0, 1, 2": (csv(edit(failure={7: 2})), "column 'failure': 1 value(s) outside {0, 1}: 2 (line 9)"),
    "label all zeros": (csv(make_telemetry().assign(failure=0)), "column 'failure': max is 0: no positive (1) row"),
    "NaN in a feature": (csv(edit(temp={3: np.nan})), "column 'temp': 1 null value(s) at line 5"),
    "inf in a feature": (csv(edit(temp={10: np.inf, 12: -np.inf})),
                         "column 'temp': 2 infinite value(s) (-inf, inf) at lines 12, 14"),
    "text in a numeric column": (csv(edit(vibration={20: "broken"})),
                                 "1 text value(s): 'broken' (line 22)"),
    "duplicate timestamps": (csv(edit(timestamp={5: pd.Timestamp("2024-01-01 04:00")})),
                             "column 'timestamp': 1 duplicate time(s): line 7 (same time as line 6)"),
    "backward time jump": (csv(backward()), "column 'timestamp': 1 backward jump(s): line 13 (earlier than line 12)"),
    "mixed time zones": (csv(mixed_zones()),
                         "column 'timestamp': mixed time zones: 160 time(s) carry a UTC offset (lines 162, 163"),
    "entities shorter than the window": (csv(short_entities()),
                                         "column 'machine': no window fits: the longest entity has 9 rows, and one "
                                         "window with a known target needs 11 (window + horizon)"),
    "a fold without positives": (csv(late_events_only_early()),
                                 "fold 1: the test part (windows ending 2024-01-03T"),
    "a 2 GB file": (sparse(2 * 1024**3), "the file is 2.0 GB, over the 1.0 GB limit (data.max_file_mb = 1024)"),
}


def registered_versions() -> list:
    """Every model version in the pipeline's registry (none when no store was ever created)."""
    if settings.is_embedded() and not (settings.home() / "mlflow.db").exists():
        return []
    client = MlflowClient(settings.tracking_uri(), settings.tracking_uri())
    return [v for m in client.search_registered_models() for v in m.latest_versions]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_stops_with_a_message_and_registers_nothing(case, tmp_path, home):
    write, message = CASES[case]
    path = tmp_path / "telemetry.csv"
    write(path)
    before = path.read_bytes() if path.stat().st_size < 1 << 30 else None
    result = CliRunner().invoke(app, ["train", "--data", str(path), *FLAGS])
    assert result.exit_code == 2, result.output
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    assert registered_versions() == []
    if before is not None:
        assert path.read_bytes() == before


def test_fold_message_says_what_to_change(tmp_path, home):
    path = tmp_path / "telemetry.csv"
    late_events_only_early().to_csv(path, index=False)
    result = CliRunner().invoke(app, ["validate", "--data", str(path), *FLAGS[:12]])
    assert result.exit_code == 1
    assert "holds 0 positive window(s), fewer than data.min_positives = 1; use fewer folds (--folds), longer " \
           "data, or a longer horizon (--horizon)" in result.output


def test_bom_and_non_ascii_column_names_validate_and_train(tmp_path, home):
    names = {"timestamp": "horodatage", "machine": "máquina", "temp": "température", "vibration": "vibración",
             "failure": "défaillance"}
    path = tmp_path / "capteurs.csv"
    make_telemetry().rename(columns=names).to_csv(path, index=False, encoding="utf-8-sig")
    before = path.read_bytes()
    assert before.startswith(b"\xef\xbb\xbf")
    flags = ["--time-col", "horodatage", "--entity-col", "máquina", "--event-col", "défaillance", "--horizon", "3",
             "--window", "4", "--folds", "1"]
    checked = CliRunner().invoke(app, ["validate", "--data", str(path), *flags])
    assert checked.exit_code == 0, checked.output
    assert "Data contract holds" in checked.output
    tiny = tmp_path / "tiny.yaml"  # the smallest run that still trains, evaluates, refits and registers
    tiny.write_text("model: {hidden: 4, layers: 1}\nevaluate: {baselines: [prior]}\n", encoding="utf-8")
    trained = CliRunner().invoke(app, ["train", "--config", str(tiny), "--data", str(path), *flags, "--epochs", "1",
                                       "--batch-size", "256"])
    assert trained.exit_code == 0, trained.output
    (version,) = registered_versions()
    assert version.name == "capteurs-lstm"
    assert path.read_bytes() == before


@pytest.mark.parametrize("command", ["train", "validate"])
def test_the_target_listed_as_a_feature_is_refused_by_name(command, tmp_path, home):
    path = tmp_path / "telemetry.csv"
    make_telemetry().to_csv(path, index=False)
    result = CliRunner().invoke(app, [command, "--data", str(path), *FLAGS, "--features", "temp,failure"]
                                if command == "train" else
                                [command, "--data", str(path), "--time-col", "timestamp", "--entity-col", "machine",
                                 "--event-col", "failure", "--horizon", "3", "--features", "temp,failure"])
    assert result.exit_code == 2, result.output
    assert "column 'failure' is the event column (the target) and cannot also be a feature" in result.output
    assert "Traceback" not in result.output
    assert registered_versions() == []


def test_validate_resolves_window_auto_once_and_says_so(tmp_path, home):
    path = tmp_path / "telemetry.csv"
    make_telemetry().to_csv(path, index=False)
    result = CliRunner().invoke(app, ["validate", "--data", str(path), "--time-col", "timestamp", "--entity-col",
                                      "machine", "--event-col", "failure", "--horizon", "3", "--window", "auto",
                                      "--folds", "2"])
    assert result.exit_code == 0, result.output
    assert "window: auto → " in result.output and "rows (autocorrelation of " in result.output
