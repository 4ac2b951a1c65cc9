"""The tuning flow on tiny telemetry: nested trial runs in MLflow, the best config as YAML that trains, and an
objective that never reads a test part."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from lstm_core.config import load_config
from lstm_core.data import read_table, resolve_spec, to_series
from lstm_core.splits import make_folds
from lstm_core.windows import make_windows
from lstm_pipeline import settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

TRIALS = 3


def tiny_config(path, **extra):
    overrides = {"data.path": str(path), "data.time_col": "timestamp", "data.entity_col": "machine",
                 "data.event_col": "failure", "data.horizon": 3, "window.length": "auto", "window.auto_min": 6,
                 "window.auto_max": 16, "split.folds": 2, "split.val_fraction": 0.3, "train.epochs": 1,
                 "train.batch_size": 64, "model.hidden": 8, "model.layers": 1, "tune.hidden": [8],
                 "tune.layers": [1], "tune.window": [6, 10], "tune.batch_size": [64], "tune.parallel": 2,
                 "tune.prune_startup": 1, "register.experiment": "tuning-test", **extra}
    return load_config(None, overrides)


def _folds(path, config, length):
    df = read_table(path)
    series = to_series(df, resolve_spec(df, config.data))
    index = make_windows(series, length)
    return series, index, make_folds(series, index, config.split)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory, prefect_harness):
    """Tune once, recording the windows every trial trained and validated on."""
    import tasks.tuning as stage
    from flows.tuning import tuning_flow
    from tests.conftest import make_telemetry

    root = tmp_path_factory.mktemp("tune")
    data = root / "telemetry.csv"
    make_telemetry().to_csv(data, index=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTM_PIPELINE_HOME", str(root / "home"))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    seen, original = [], stage.validation_pr_auc

    def recording(train, val, config):
        seen.append((train.length, train.ends.copy(), val.ends.copy()))
        return original(train, val, config)

    mp.setattr(stage, "validation_pr_auc", recording)
    result = tuning_flow(tiny_config(data), trials=TRIALS, out=str(root / "best.yaml"))
    yield {"result": result, "seen": seen, "data": data, "root": root,
           "client": MlflowClient(settings.tracking_uri(), settings.tracking_uri())}
    mp.undo()


def test_trial_zero_is_the_config_as_given_and_every_trial_is_a_nested_run(tuned):
    result, client = tuned["result"], tuned["client"]
    trials = result["trials"]
    assert [t["number"] for t in trials] == list(range(TRIALS))
    length = result["window_length"]
    assert trials[0]["params"] == {"model.hidden": 8, "model.layers": 1, "window.length": length,
                                   "train.batch_size": 64, "model.cell": "lstm", "model.pooling": "last",
                                   "model.dropout": 0.2, "train.lr": 0.001}
    parent = client.get_run(result["mlflow"]["run_id"])
    children = client.search_runs([parent.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["attributes.start_time"])
    assert sorted(c.data.params["trial.number"] for c in children) == [str(n) for n in range(TRIALS)]
    for child, trial in zip(sorted(children, key=lambda c: int(c.data.params["trial.number"])), trials, strict=True):
        for dotted, value in trial["params"].items():
            assert child.data.params[dotted] == str(value)
        assert child.data.tags["trial.state"] == trial["state"]
        if trial["state"] == "COMPLETE":
            assert child.data.metrics["val_pr_auc_mean"] == pytest.approx(np.mean(trial["fold_values"]))
        history = client.get_metric_history(child.info.run_id, "val_pr_auc")
        assert [m.step for m in history] == list(range(1, len(trial["fold_values"]) + 1))
    done = [t for t in trials if t["state"] == "COMPLETE"]
    best = max(done, key=lambda t: t["value"])
    assert parent.data.metrics["best_val_pr_auc"] == pytest.approx(best["value"])
    assert parent.data.metrics["default_val_pr_auc"] == pytest.approx(trials[0]["value"])
    assert parent.data.metrics["improvement_over_default"] == pytest.approx(best["value"] - trials[0]["value"])
    assert parent.data.metrics["improvement_over_default"] >= 0  # trial 0 competes: never worse than the default
    assert parent.data.params["best.trial"] == str(best["number"])


def test_window_auto_is_resolved_logged_and_plotted(tuned):
    result, client = tuned["result"], tuned["client"]
    parent = client.get_run(result["mlflow"]["run_id"])
    assert parent.data.params["window.length"] == "auto"
    assert parent.data.params["window.length_resolved"] == str(result["window_length"])
    assert 6 <= result["window_length"] <= 16
    assert parent.info.run_name == f"tune-telemetry-w{result['window_length']}"
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/acf.png", "plots/optuna_history.png"} <= plots
    assert {"best.yaml", "tuning.json"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}


def test_trials_read_training_and_validation_windows_only(tuned):
    """Every fit saw exactly a fold's training and validation windows, and no window of its test part."""
    config, seen = tiny_config(tuned["data"]), tuned["seen"]
    assert len(seen) >= TRIALS  # at least one fold per trial; two for each one not pruned
    for length, train_ends, val_ends in seen:
        series, index, folds = _folds(tuned["data"], config, length)
        fold = next(f for f in folds if np.array_equal(index.ends[f.val], val_ends))
        assert np.array_equal(index.ends[fold.train], train_ends)
        test_ends = index.ends[fold.test]
        assert not np.isin(train_ends, test_ends).any() and not np.isin(val_ends, test_ends).any()
        # neither the rows nor the targets they read reach the test part
        reach = np.concatenate([index.reach[fold.train], index.reach[fold.val]])
        assert series.time[reach].max() < fold.bounds["test_start"]


def test_poisoned_test_rows_leave_the_objective_unchanged(tuned, tmp_path, monkeypatch):
    """Rows only the last test part reads get absurd features and shuffled events: trial 0 scores the same."""
    from flows.tuning import tuning_flow

    monkeypatch.setenv("LSTM_PIPELINE_HOME", str(tmp_path / "home"))
    length = tuned["result"]["window_length"]
    series, index, folds = _folds(tuned["data"], tiny_config(tuned["data"]), length)
    start = folds[-1].bounds["test_start"]
    df = pd.read_csv(tuned["data"])
    late = (pd.to_datetime(df["timestamp"]).astype("datetime64[ns]").astype("int64") >= start).to_numpy()
    assert 0 < late.sum() < len(df)
    rng = np.random.default_rng(7)
    df.loc[late, ["temp", "vibration"]] = rng.normal(1e5, 1e4, size=(late.sum(), 2))
    df.loc[late, "failure"] = rng.permutation(df.loc[late, "failure"].to_numpy())
    poisoned = tmp_path / "telemetry.csv"
    df.to_csv(poisoned, index=False)
    again = tuning_flow(tiny_config(poisoned), trials=1, out=str(tmp_path / "best.yaml"))
    assert again["window_length"] == length
    assert again["trials"][0]["fold_values"] == tuned["result"]["trials"][0]["fold_values"]


def test_best_yaml_loads_and_trains(tuned):
    from flows.training import training_pipeline

    result = tuned["result"]
    path = tuned["root"] / "best.yaml"
    assert result["best_yaml"] == str(path)
    tree = yaml.safe_load(path.read_text())
    best = load_config(path)
    for dotted, value in result["best"]["params"].items():
        section, name = dotted.split(".")
        assert tree[section][name] == value and getattr(getattr(best, section), name) == value
    assert isinstance(best.window.length, int)
    # what `lstm-pipeline train --config best.yaml --flags` does: the YAML, then flags on top
    cfg = load_config(path, {"evaluate.baselines": ["prior"], "register.enabled": False})
    summary = training_pipeline(cfg)
    assert summary["config"]["window"]["length"] == best.window.length
    assert np.isfinite(summary["aggregate"]["lstm"]["pr_auc_mean"])
