"""Batch scoring end to end: a registered champion scores a file without a target; what lands on disk and in MLflow."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from lstm_core.config import ScoreConfig, load_config
from lstm_core.data import DataError, read_table, resolve_spec, to_series
from lstm_core.scoring import fit_final
from lstm_core.windows import make_windows
from lstm_pipeline import registry, settings, tracking
from lstm_pipeline.contract import ContractError, run_contract

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

NAME, WINDOW, ROWS, MACHINES = "telemetry-score", 8, 160, 2


def _config(path):
    return load_config(None, {"data.path": str(path), "data.time_col": "timestamp", "data.entity_col": "machine",
                              "data.event_col": "failure", "data.horizon": 3, "window.length": WINDOW,
                              "train.epochs": 1, "train.min_steps": 20, "train.batch_size": 64, "model.hidden": 8, "model.layers": 1,
                              "register.model_name": NAME, "register.experiment": "scoring-test-training"})


def _register(cfg, scorer, df) -> int:
    run_id = tracking.start_run(cfg.register.experiment, "fit", {}, {})
    example = np.asarray(df[["temp", "vibration"]].to_numpy(np.float32)[None, :WINDOW])
    out = tracking.log_and_register(run_id, scorer, example, NAME, {}, cfg.model_dump(mode="json"))
    tracking.finish_run(run_id)
    return out["version"]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """Two versions of a one-epoch scorer: version 1 champion, version 2 challenger (a different threshold)."""
    from tests.conftest import make_telemetry

    root = tmp_path_factory.mktemp("scoring")
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTM_PIPELINE_HOME", str(root / "home"))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.chdir(root)
    train_file = root / "telemetry.csv"
    make_telemetry(MACHINES, ROWS).to_csv(train_file, index=False)
    cfg = _config(train_file)
    df = read_table(train_file)
    series = to_series(df, resolve_spec(df, cfg.data))
    scorer = fit_final(series, make_windows(series, WINDOW), cfg, epochs=1, threshold=0.5)
    v1 = _register(cfg, scorer, df)
    scorer.spec = {**scorer.spec, "threshold": 0.0}  # version 2 flags every window
    v2 = _register(cfg, scorer, df)
    client = tracking.client()
    registry.promote(client, NAME, v1)
    # the file to score: new rows, no 'failure' column at all
    fresh = make_telemetry(MACHINES, ROWS, seed=7).drop(columns="failure")
    score_file = root / "fresh.csv"
    fresh.to_csv(score_file, index=False)
    yield {"root": root, "client": MlflowClient(settings.tracking_uri(), settings.tracking_uri()), "v1": v1, "v2": v2, "file": score_file,
           "frame": fresh, "config": cfg}
    mp.undo()


def test_champion_scores_every_window_and_the_run_lands_in_mlflow(registered, tmp_path):
    from flows.scoring import batch_scoring

    out = tmp_path / "preds.parquet"
    result = batch_scoring(ScoreConfig(data=str(registered["file"]), model_name=NAME, out=str(out)))
    frame = pd.read_parquet(out)
    assert list(frame.columns) == ["entity", "time", "score", "prediction", "model", "model_version"]
    windows = MACHINES * (ROWS - WINDOW + 1)  # every complete window: no horizon needed to score
    assert len(frame) == windows and result["windows"] == windows
    assert set(frame["model"]) == {NAME} and set(frame["model_version"]) == {registered["v1"]}
    assert ((frame["score"] >= 0.5) == frame["prediction"].astype(bool)).all()
    # the scores are the champion's own on these windows: recompute the first one by hand
    import mlflow.pyfunc

    scorer = mlflow.pyfunc.load_model(f"models:/{NAME}/{registered['v1']}")  # the registry's own loader
    first = registered["frame"].iloc[:WINDOW][["temp", "vibration"]].to_numpy(np.float32)
    expected = float(scorer.predict(first[None])[0])
    assert frame["score"].iloc[0] == pytest.approx(expected, abs=1e-6)

    client = registered["client"]
    run = client.get_run(result["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == f"{NAME}-scoring"
    assert run.data.params["model.uri"] == f"models:/{NAME}/{registered['v1']}"
    assert run.data.params["model.requested"] == f"models:/{NAME}@champion"
    assert run.data.params["model.version"] == str(registered["v1"])
    assert run.data.params["input.rows"] == str(MACHINES * ROWS)
    assert run.data.params["input.hash"] == result["input"]["hash"]
    assert run.data.params["predictions.path"] == str(out)
    assert run.data.metrics["windows"] == windows
    assert run.data.metrics["rows_scored"] == MACHINES * ROWS
    assert run.data.metrics["positive_rate"] == pytest.approx(frame["prediction"].mean())
    assert run.data.tags["validation.status"] == "passed"
    assert {a.path for a in client.list_artifacts(run.info.run_id, "predictions")} == {"predictions/preds.parquet"}


def test_alias_picks_the_version_and_the_default_output_names_it(registered):
    from flows.scoring import batch_scoring

    result = batch_scoring(ScoreConfig(data=str(registered["file"]), model_name=NAME, alias="challenger",
                                       log_predictions=False))
    expected = settings.home() / "predictions" / f"fresh-{NAME}-v{registered['v2']}.parquet"
    assert result["predictions"] == str(expected)
    frame = pd.read_parquet(expected)
    assert set(frame["model_version"]) == {registered["v2"]}
    assert frame["prediction"].all()  # version 2's threshold is 0
    assert result["positive_rate"] == 1.0
    assert registered["client"].list_artifacts(result["mlflow"]["run_id"], "predictions") == []


def test_missing_feature_is_refused_by_name(registered, tmp_path):
    from flows.scoring import batch_scoring

    path = tmp_path / "no_vibration.csv"
    registered["frame"].drop(columns="vibration").to_csv(path, index=False)
    with pytest.raises(DataError, match=r"\['vibration'\] needed by models:/telemetry-score/1"):
        batch_scoring(ScoreConfig(data=str(path), model_name=NAME))


def test_contract_breach_fails_the_run_with_the_line(registered, tmp_path):
    from flows.scoring import batch_scoring

    path = tmp_path / "gappy.csv"
    frame = registered["frame"].copy()
    frame.loc[3, "temp"] = None  # line 5 of the file; the training run's policy is missing=error
    frame.to_csv(path, index=False)
    with pytest.raises(ContractError, match="column 'temp': 1 null value.* line 5"):
        batch_scoring(ScoreConfig(data=str(path), model_name=NAME, experiment="gappy-scoring"))
    client = registered["client"]
    (run,) = client.search_runs([client.get_experiment_by_name("gappy-scoring").experiment_id])
    assert run.info.status == "FAILED" and run.data.tags["validation.status"] == "failed"


def test_scoring_contract_skips_the_target_and_keeps_constant_features(registered):
    frame = registered["frame"].assign(vibration=1.0)  # constant: training would drop it, scoring must not
    spec = resolve_spec(frame.assign(failure=0), registered["config"].data)
    report = run_contract(frame, spec, registered["config"], scoring=True)
    assert report.success and report.dropped == ()
    assert "failure" not in {c.column for c in report.checks}
    enough = next(c for c in report.checks if c.name.startswith("some entity has"))
    assert enough.name == f"some entity has {WINDOW} rows"  # the window alone; no horizon past it


def test_score_command_runs_the_flow_and_refuses_in_one_line(registered, tmp_path):
    from typer.testing import CliRunner

    from lstm_app.cli import app

    out = tmp_path / "scores.csv"
    done = CliRunner().invoke(app, ["score", "--model-name", NAME, "--data", str(registered["file"]),
                                    "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert f"{MACHINES * (ROWS - WINDOW + 1)} windows scored with models:/{NAME}/{registered['v1']}" in done.output
    assert list(pd.read_csv(out).columns) == ["entity", "time", "score", "prediction", "model", "model_version"]
    bad = tmp_path / "no_temp.csv"
    registered["frame"].drop(columns="temp").to_csv(bad, index=False)
    refused = CliRunner().invoke(app, ["score", "--model-name", NAME, "--data", str(bad)])
    assert refused.exit_code == 2 and "['temp'] needed by" in refused.output and "Traceback" not in refused.output
    assert CliRunner().invoke(app, ["score", "--data", str(bad)]).exit_code == 2  # no model named
