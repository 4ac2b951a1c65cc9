"""The command line as a user runs it: an unseen CSV, column flags only, then scoring from the registry."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from lstm_app.cli import app

FLAGS = ["--time-col", "timestamp", "--entity-col", "machine", "--event-col", "failure", "--horizon", "3",
         "--window", "8", "--folds", "2", "--epochs", "2", "--batch-size", "64"]


def _cli(args: list[str], home: Path, cwd: Path, api: str | None = None) -> subprocess.CompletedProcess:
    """The console script in a fresh process: its own ephemeral Prefect API, unless ``api`` names one."""
    env = {**os.environ, "LSTM_PIPELINE_HOME": str(home)}
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("PREFECT_API_URL", None)
    env.pop("PREFECT_HOME", None)
    if api:
        env["PREFECT_API_URL"] = api
    cmd = [sys.executable, "-c", "from lstm_app.cli import main; main()", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_train_then_score_an_unseen_csv(tmp_path, telemetry_csv, prefect_harness):
    from prefect.settings import get_current_settings

    home, summary_path = tmp_path / "home", tmp_path / "out" / "summary.json"
    done = _cli(["train", "--data", str(telemetry_csv), *FLAGS, "--summary-json", str(summary_path)], home, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(summary_path.read_text())
    models = {"lstm", "prior", "persistence", "logistic", "hgb"}
    assert set(summary["aggregate"]) == models
    assert all(set(f["metrics"]) == models for f in summary["folds"])
    assert summary["config"]["window"]["length"] == 8
    reg = summary["registered_model"]
    assert reg["name"] == "telemetry-lstm"  # derived from the data file's name
    assert (home / "mlflow.db").exists() and (home / "prefect" / "prefect.db").exists()
    # the answer on stdout (`train ... > out.txt` holds it), progress and logs on stderr
    for line in ("Test windows, walk-forward", f"models:/{reg['name']}@{reg['alias']}", summary["mlflow"]["run_id"]):
        assert line in done.stdout and line not in done.stderr, line
    assert "summary written to" in done.stderr and "evaluations" in done.stderr

    out = tmp_path / "scores.parquet"
    # train paid the cold start of an ephemeral Prefect server; scoring uses the session's API to save ~25 s
    scored = _cli(["score", "--model", f"models:/{reg['name']}@challenger", "--data", str(telemetry_csv),
                   "--out", str(out), "--json"], home, tmp_path, api=str(get_current_settings().api.url))
    assert scored.returncode == 0, scored.stderr[-3000:]
    said = json.loads(scored.stdout)  # --json: stdout is the result alone; the sentence went to stderr
    assert said["predictions"] == str(out) and said["windows"] == 2 * (160 - 8 + 1)
    assert "windows scored with" in scored.stderr
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["entity", "time", "score", "prediction", "model", "model_version"]
    assert set(frame["model"]) == {reg["name"]} and set(frame["model_version"]) == {reg["version"]}
    assert len(frame) == 2 * (160 - 8 + 1)
    assert set(frame["entity"]) == {"m0", "m1"}
    assert ((frame["score"] >= summary["final_model"]["threshold"]) == frame["prediction"].astype(bool)).all()


@pytest.mark.usefixtures("prefect_harness")
def test_missing_column_names_the_column(tmp_path, telemetry_csv, home):
    result = CliRunner().invoke(app, ["train", "--data", str(telemetry_csv), *FLAGS[:4], "--event-col", "failed"])
    assert result.exit_code == 2
    assert "['failed'] not found" in result.output


def test_no_target_says_which_flag(tmp_path, telemetry_csv, home):
    result = CliRunner().invoke(app, ["train", "--data", str(telemetry_csv), "--time-col", "timestamp"])
    assert result.exit_code == 2
    assert "--label-col" in result.output and "--event-col" in result.output


def test_missing_file_is_named(tmp_path, home):
    result = CliRunner().invoke(app, ["validate", "--data", str(tmp_path / "nope.csv"), "--label-col", "y"])
    assert result.exit_code == 2
    assert "nope.csv: file not found" in result.output


def test_validate_passes_and_prints_the_table(telemetry_csv, home):
    result = CliRunner().invoke(app, ["validate", "--data", str(telemetry_csv), *FLAGS[:6]])
    assert result.exit_code == 0, result.output
    assert "no missing values" in result.output and "strictly increasing" in result.output
    assert "Data contract holds" in result.output
    assert "FAIL" not in result.output


def test_validate_fails_with_the_line(tmp_path, home):
    from tests.conftest import make_telemetry

    frame = make_telemetry()
    frame.loc[3, "temp"] = None
    path = tmp_path / "gappy.csv"
    frame.to_csv(path, index=False)
    result = CliRunner().invoke(app, ["validate", "--data", str(path), *FLAGS[:6]])
    assert result.exit_code == 1
    assert "column 'temp'" in result.output and "line 5" in result.output


def test_config_file_and_flags_merge(tmp_path):
    from lstm_app.cli import build_config

    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text("data:\n  time_col: ts\n  label_col: y\ntrain:\n  epochs: 30\n  lr: 0.01\n")
    cfg = build_config({"config": cfg_file, "epochs": 3, "features": "a, b"})
    assert (cfg.train.epochs, cfg.train.lr, cfg.data.time_col) == (3, 0.01, "ts")
    assert cfg.data.features == ["a", "b"]
