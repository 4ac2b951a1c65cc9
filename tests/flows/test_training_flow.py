"""The training flow end to end on tiny data, asserting on what landed in MLflow."""
from __future__ import annotations

import json
from datetime import timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from lstm_core.config import load_config
from lstm_pipeline import settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

FOLDS, EPOCHS = 2, 2


def tiny_config(path, **extra):
    overrides = {"data.path": str(path), "data.time_col": "timestamp", "data.entity_col": "machine",
                 "data.event_col": "failure", "data.horizon": 3, "window.length": 8, "split.folds": FOLDS,
                 "split.val_fraction": 0.3, "train.epochs": EPOCHS, "train.min_steps": 20, "train.batch_size": 64,
                 "model.hidden": 8,
                 "model.layers": 1, "register.model_name": "telemetry-test", **extra}
    return load_config(None, overrides)


@pytest.fixture(scope="module")
def landed(tmp_path_factory, prefect_harness):
    """Run the flow once; every test of this module reads what it left behind."""
    from tests.conftest import make_telemetry

    root = tmp_path_factory.mktemp("flow")
    data = root / "telemetry.csv"
    make_telemetry().to_csv(data, index=False)
    before = data.read_bytes()
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTM_PIPELINE_HOME", str(root / "home"))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.chdir(root)
    from flows.training import training_pipeline

    state = training_pipeline(tiny_config(data), return_state=True)
    summary = state.result()
    client = MlflowClient(settings.tracking_uri(), settings.tracking_uri())
    yield {"summary": summary, "client": client, "data": data, "before": before,
           "flow_run_id": state.state_details.flow_run_id}
    mp.undo()


def test_parent_run_has_config_fingerprint_and_aggregates(landed):
    client, summary = landed["client"], landed["summary"]
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["window.length"] == "8"
    assert run.data.params["split.folds"] == str(FOLDS)
    assert run.data.params["data.fingerprint.hash"] == summary["data"]["hash"]
    assert run.data.params["data.fingerprint.rows"] == "320"
    metrics = run.data.metrics
    for key in ("pr_auc_mean", "mcc_std", "pr_auc_pooled"):  # in sections: the LSTM's first, each baseline's
        assert metrics[f"LSTM/{key}"] == pytest.approx(summary["aggregate"]["lstm"][key], nan_ok=True)
        for model in ("prior", "persistence", "logistic", "hgb"):
            assert metrics[f"baselines/{model}/{key}"] == pytest.approx(summary["aggregate"][model][key], nan_ok=True)
    assert not [k for k in metrics if "/" not in k]  # no key outside a section
    rival = summary["aggregate"][summary["best_baseline"]]["pr_auc_mean"]
    assert metrics["LSTM/pr_auc_gain_over_best_baseline"] == pytest.approx(metrics["LSTM/pr_auc_mean"] - rival)
    # one point per fold, stepped by fold number, so the chart shows the spread
    history = landed["client"].get_metric_history(run.info.run_id, "folds/LSTM/pr_auc")
    assert [m.step for m in history] == [f["fold"] for f in summary["folds"]]
    assert [m.value for m in history] == pytest.approx([f["metrics"]["lstm"]["pr_auc"] for f in summary["folds"]])
    # the prior predicts a constant: its PR-AUC is the test prevalence and its MCC is 0
    assert metrics["baselines/prior/mcc_mean"] == 0.0
    assert run.data.tags["mlflow.source.name"] == "lstm-pipeline"
    (dataset,) = run.inputs.dataset_inputs
    assert (dataset.dataset.name, dataset.dataset.digest) == ("telemetry.csv", summary["data"]["hash"])
    assert json.loads(dataset.dataset.profile) == {"num_rows": 320, "num_elements": 320 * 5}  # the whole table
    schema = json.loads(dataset.dataset.schema)["mlflow_colspec"]
    assert [c["name"] for c in schema] == list(pd.read_csv(landed["data"], nrows=1).columns)
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"


def test_parent_run_artifacts(landed):
    client, run_id = landed["client"], landed["summary"]["mlflow"]["run_id"]
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"summary.json", "plots", "validation"} <= top
    validation = {a.path for a in client.list_artifacts(run_id, "validation")}
    assert validation == {"validation/gx_result.json", "validation/data_docs"}
    docs = {a.path for a in client.list_artifacts(run_id, "validation/data_docs")}
    assert "validation/data_docs/index.html" in docs
    run = client.get_run(run_id)
    assert run.data.params["data.features_used"] == "temp,vibration"
    assert run.data.params["data.features_dropped"] == "none"
    assert run.data.tags["validation.status"] == "passed"
    assert {a.path for a in client.list_artifacts(run_id, "plots")} == {
        "plots/pr_curves.png", "plots/training_curves.png", "plots/interpret"}  # no plots/acf.png: the length was given
    assert {a.path for a in client.list_artifacts(run_id, "plots/interpret")} == {
        f"plots/interpret/{n}.png" for n in ("forget_gate", "hidden_activity", "confusion_matrices")}
    local = client.download_artifacts(run_id, "summary.json")
    with open(local, encoding="utf-8") as fh:
        assert json.load(fh)["mlflow"]["run_id"] == run_id


def test_one_nested_run_per_fold_with_epoch_curves(landed):
    client, summary = landed["client"], landed["summary"]
    run_id = summary["mlflow"]["run_id"]
    parent = client.get_run(run_id)
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    assert sorted(c.info.run_name for c in children) == [f"fold-{k}" for k in range(1, FOLDS + 1)]
    for child in children:
        k = int(child.data.tags["fold"])
        fold = summary["folds"][k - 1]
        history = client.get_metric_history(child.info.run_id, "train/loss")
        assert [m.step for m in history] == list(range(1, len(history) + 1))
        assert len(history) >= 1
        # validation has one point more, at step 0: the network's logistic start, before any training step
        val = sorted(m.step for m in client.get_metric_history(child.info.run_id, "val/pr_auc"))
        assert val == list(range(len(history) + 1))
        assert child.data.metrics["train/best_step"] == fold["best_step"]
        assert child.data.params["test.windows"] == str(fold["test"]["windows"])
        assert child.data.metrics["LSTM/pr_auc"] == pytest.approx(fold["metrics"]["lstm"]["pr_auc"])
        assert child.data.metrics["baselines/logistic/pr_auc"] == pytest.approx(fold["metrics"]["logistic"]["pr_auc"])
        # the fold run spans its training: it starts before and ends after a training that took seconds
        span = (child.info.end_time - child.info.start_time) / 1000
        assert span == pytest.approx(child.data.metrics["train/seconds"], abs=0.01)


def test_summary_reports_every_model_on_the_same_test_windows(landed):
    summary = landed["summary"]
    assert len(summary["folds"]) == FOLDS
    for fold in summary["folds"]:
        sizes = {m: v["n"] for m, v in fold["metrics"].items()}
        assert set(sizes) == {"lstm", "prior", "persistence", "logistic", "hgb"}
        assert set(sizes.values()) == {fold["test"]["windows"]}
    # the scores each evaluation stored: the LSTM's and the baselines' of one fold end at the same rows and
    # carry the same targets (equal counts alone would let two different sets of windows pass)
    stored = [dict(np.load(p)) for p in (landed["data"].parent / "home" / "workspace").glob("scores-*.npz")]
    lstm = sorted((a for a in stored if "lstm" in a), key=lambda a: int(a["ends"][0]))
    base = sorted((a for a in stored if "hgb" in a), key=lambda a: int(a["ends"][0]))
    assert len(lstm) == len(base) == FOLDS
    for fold, mine, theirs in zip(summary["folds"], lstm, base, strict=True):
        np.testing.assert_array_equal(theirs["ends"], mine["ends"])
        np.testing.assert_array_equal(theirs["y"], mine["y"])
        assert (len(mine["ends"]), int(mine["y"].sum())) == (fold["test"]["windows"], fold["test"]["positives"])
    assert summary["best_baseline"] in {"prior", "persistence", "logistic", "hgb"}
    # the final model trains for the folds' median best step (0: the folds kept their logistic start)
    assert summary["final_model"]["steps"] == int(np.median([f["best_step"] for f in summary["folds"]]))
    # the registered model was evaluated on windows it never trained on, and the summary says with which threshold
    final = summary["final_model"]
    assert final["evaluation"]["windows"] > 0 and final["threshold"] == final["evaluation"]["threshold"]


def test_registered_challenger_scores_raw_rows(landed):
    client, summary = landed["client"], landed["summary"]
    reg = summary["registered_model"]
    assert (reg["name"], reg["version"], reg["alias"]) == ("telemetry-test", 1, "challenger")
    version = client.get_model_version_by_alias("telemetry-test", "challenger")
    assert int(version.version) == 1
    assert version.run_id == summary["mlflow"]["run_id"]
    assert version.tags["data.hash"] == summary["data"]["hash"]
    # the gate ran: its decision is in the summary, on the version, and in the aliases
    gate = reg["gate"]
    assert version.tags["gate.decision"] == ("promoted" if gate["promoted"] else "refused")
    assert version.tags["gate.reasons"] == " | ".join(gate["reasons"])
    assert ("champion" in client.get_registered_model("telemetry-test").aliases) == gate["promoted"]
    assert "not applied: there is no champion yet" in gate["reasons"]

    import mlflow.artifacts

    local = Path(mlflow.artifacts.download_artifacts("models:/telemetry-test/1", tracking_uri=settings.tracking_uri()))
    config = json.loads((local / "data" / "scorer" / "pipeline_config.json").read_text())
    assert config["window"]["length"] == 8 and config["data"]["event_col"] == "failure"
    spec = json.loads((local / "data" / "scorer" / "scorer.json").read_text())["spec"]
    assert spec["features"] == ["temp", "vibration"] and spec["window"] == 8
    assert (local / "data" / "scorer" / "weights.safetensors").is_file()  # weights without pickle

    from lstm_app.runner import load_scorer
    from lstm_core.scoring import score_frame

    scorer = load_scorer("models:/telemetry-test@challenger")
    raw = pd.read_csv(landed["data"]).drop(columns="failure")
    scored = score_frame(scorer, raw)
    assert len(scored) == 2 * (160 - 8 + 1)  # every complete window of each machine
    assert scored["score"].between(0, 1).all()
    assert scorer.threshold == pytest.approx(summary["final_model"]["threshold"])


def test_runs_are_named_for_what_differs_and_linked_both_ways(landed):
    from prefect import get_client

    client, summary = landed["client"], landed["summary"]
    with get_client(sync_client=True) as prefect:
        flow_run = prefect.read_flow_run(landed["flow_run_id"])
    # Prefect's generated name gave way to the file, window, strategy and the minute the run was due
    due = flow_run.expected_start_time.astimezone(timezone.utc).strftime("%m%d-%H%M")
    assert flow_run.name == f"telemetry-w8-none-{due}"
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.info.run_name == flow_run.name
    assert run.data.tags["prefect.flow_run_id"] == str(flow_run.id)
    assert summary["prefect"]["prefect.flow_run_id"] == str(flow_run.id)
    assert summary["mlflow"]["run_url"].endswith(
        f"#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}?workflowType=machine_learning")
    version = client.get_model_version("telemetry-test", "1")
    assert version.tags["prefect.flow_run_id"] == str(flow_run.id)
    assert summary["mlflow"]["run_url"] in version.description


def test_input_file_is_never_modified(landed):
    assert landed["data"].read_bytes() == landed["before"]


def test_everything_lives_under_home(landed):
    root = landed["data"].parent
    assert sorted(p.name for p in root.iterdir()) == ["home", "telemetry.csv"]  # no ./mlruns, no GX folder
    home = root / "home"
    assert {"mlflow.db", "mlartifacts", "workspace"} <= {p.name for p in home.iterdir()}
    run = landed["client"].get_run(landed["summary"]["mlflow"]["run_id"])
    assert run.info.artifact_uri.startswith((home / "mlartifacts").as_uri())


def test_contract_failure_stops_before_training_and_registers_nothing(tmp_path, home):
    from flows.training import training_pipeline
    from lstm_pipeline.contract import ContractError
    from tests.conftest import make_telemetry

    bad = make_telemetry()
    bad.loc[7, "failure"] = 2
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ContractError, match="'failure'.*2.*line 9"):
        training_pipeline(tiny_config(path, **{"register.model_name": "never-registered"}))
    client = MlflowClient(settings.tracking_uri(), settings.tracking_uri())
    runs = client.search_runs([client.get_experiment_by_name("lstm-rare-event").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert client.search_runs([runs[0].info.experiment_id], "tags.fold = '1'") == []
    assert client.search_registered_models("name = 'never-registered'") == []


def test_contract_drops_constant_features_and_the_policy_fills_holes(tmp_path, home):
    """validate and window inside a small flow: what they hand on, and what lands in MLflow."""
    from prefect import flow

    from tasks.data import load_data, validate_data, window_data
    from tasks.runs import open_run
    from tests.conftest import make_telemetry

    frame = make_telemetry().assign(const=1.5)
    frame.loc[[3, 4], "temp"] = float("nan")  # machine m0, rows 3 and 4: filled from row 2
    path = tmp_path / "telemetry.csv"
    frame.to_csv(path, index=False)
    config = tiny_config(path, **{"data.missing": "ffill", "data.ffill_limit": 2})

    @flow
    def validate_and_window():
        loaded = load_data(config)
        run_id = open_run(config, loaded)
        checked = validate_data(loaded, run_id, config)
        return run_id, checked, window_data(checked, config, run_id)

    run_id, checked, windows = validate_and_window()
    assert checked["features"] == ["temp", "vibration"] and checked["contract"]["dropped"] == ["const"]
    assert windows["missing"] == {"policy": "ffill", "missing_values": 2, "filled": 2, "dropped_rows": 0,
                                  "dropped_lines": ""}
    run = MlflowClient(settings.tracking_uri(), settings.tracking_uri()).get_run(run_id)
    assert run.data.params["data.features_dropped"] == "const"
    assert run.data.params["data.features_used"] == "temp,vibration"
    assert run.data.params["data.missing.filled"] == "2"
    assert run.data.tags["validation.warnings"] == "1" and run.data.tags["data.features_dropped"] == "const"


def test_per_fold_table_artifact_puts_each_baseline_beside_the_lstm(landed):
    from prefect import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:  # this flow run's artifact: later tests run flows too
        (artifact,) = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=["per-fold-metrics"]), flow_run_id=ArtifactFilterFlowRunId(any_=[landed["flow_run_id"]])))
    rows = json.loads(artifact.data)
    folds = landed["summary"]["folds"]
    assert [r["fold"] for r in rows] == [f["fold"] for f in folds]
    for row, fold in zip(rows, folds, strict=True):
        metrics = fold["metrics"]
        for model in ("lstm", "prior", "persistence", "logistic", "hgb"):
            assert row[f"{model} PR-AUC / MCC"] == f"{metrics[model]['pr_auc']:.3f} / {metrics[model]['mcc']:.3f}"
        assert list(row)[:3] == ["fold", "LSTM − best PR-AUC", "best baseline"]  # the answer before the detail
        best = max(("prior", "persistence", "logistic", "hgb"), key=lambda m: metrics[m]["pr_auc"])
        assert row["best baseline"] == best
        assert row["LSTM − best PR-AUC"] == f"{metrics['lstm']['pr_auc'] - metrics[best]['pr_auc']:+.3f}"


def test_train_with_window_auto_runs_end_to_end(tmp_path, home):
    """`train --window auto` over a YAML config: resolved once by the window stage, used by every later stage."""
    import yaml
    from typer.testing import CliRunner

    from lstm_app.cli import app
    from tests.conftest import make_telemetry

    data, cfg_file, out = tmp_path / "telemetry.csv", tmp_path / "auto.yaml", tmp_path / "summary.json"
    make_telemetry().to_csv(data, index=False)
    cfg_file.write_text(yaml.safe_dump({"window": {"length": 24, "auto_min": 4, "auto_max": 12},
                                        "model": {"hidden": 8, "layers": 1}, "split": {"val_fraction": 0.3}}))
    result = CliRunner().invoke(app, ["train", "--config", str(cfg_file), "--data", str(data), "--time-col",
                                      "timestamp", "--entity-col", "machine", "--event-col", "failure", "--horizon",
                                      "3", "--window", "auto", "--folds", "2", "--epochs", "1", "--batch-size", "64",
                                      "--model-name", "auto-window-test", "--summary-json", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.read_text())
    length = summary["config"]["window"]["length"]
    assert isinstance(length, int) and 4 <= length <= 12
    assert f"window: auto → {length} rows" in result.output
    client = MlflowClient(settings.tracking_uri(), settings.tracking_uri())
    run = client.get_run(summary["mlflow"]["run_id"])
    assert run.data.params["window.length"] == "auto"
    assert run.data.params["window.length_resolved"] == str(length)
    assert summary["registered_model"]["version"] == 1


def test_a_rerun_on_unchanged_data_registers_nothing_and_keeps_a_given_name(landed):
    """Same data, config and code as the latest version: no new version, the run says which one stands. A name
    given to the run is kept, in Prefect and in MLflow. (Runs last in this module: it adds a run to its home.)"""
    from flows.training import training_pipeline

    client = landed["client"]
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTM_PIPELINE_HOME", str(landed["data"].parent / "home"))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        again = training_pipeline.with_options(flow_run_name="rerun {config.window.length} by hand")(
            tiny_config(landed["data"]))
    finally:
        mp.undo()
    reg = again["registered_model"]
    assert (reg["version"], reg["unchanged"], reg["gate"]) == (1, True, None)
    assert [int(v.version) for v in client.search_model_versions("name='telemetry-test'")] == [1]
    run = client.get_run(again["mlflow"]["run_id"])
    assert run.info.run_id != landed["summary"]["mlflow"]["run_id"]  # a new run, which registered nothing
    assert run.data.tags["registry.unchanged_since"] == "1"
    assert run.info.run_name == "rerun 8 by hand"


def test_episode_metrics_land_beside_the_window_metrics(landed):
    """Per fold and aggregated, for every model: the summary JSON, the fold runs and the parent run."""
    client, summary = landed["client"], landed["summary"]
    models = {"lstm", "prior", "persistence", "logistic", "hgb"}
    assert set(summary["episodes"]) == models
    assert all("episode_recall_mean" in v and "false_alarms_total" in v for v in summary["episodes"].values())
    for fold in summary["folds"]:
        assert set(fold["episodes"]) == models
        assert fold["episodes"]["lstm"]["episodes"] >= 0 and "false_alarms_per_day" in fold["episodes"]["lstm"]
    run_id = summary["mlflow"]["run_id"]
    parent = client.get_run(run_id)
    assert parent.data.metrics["LSTM/episode/false_alarms_total"] == summary["episodes"]["lstm"]["false_alarms_total"]
    assert "baselines/hgb/episode/false_alarms_mean" in parent.data.metrics
    children = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    for child in children:
        fold = summary["folds"][int(child.data.tags["fold"]) - 1]
        assert child.data.metrics["LSTM/episode/false_alarms"] == fold["episodes"]["lstm"]["false_alarms"]
