"""The tuning flow on tiny telemetry: nested trial runs in MLflow, the best config as YAML that trains, and an
objective that never reads a window of any outer test block."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from lstm_core.config import TrainConfig, load_config
from lstm_core.data import read_table, resolve_spec, to_series
from lstm_core.splits import make_folds, tuning_folds
from lstm_core.windows import make_windows
from lstm_pipeline import settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

TRIALS = 3
ROWS = 480  # per machine: enough for two inner folds before the first outer test block
# a step floor, where the training loop has one, would make each tiny fit run for minutes
FEW_STEPS = {"train.min_steps": 20} if "min_steps" in TrainConfig.model_fields else {}


def tiny_config(path, **extra):
    overrides = {"data.path": str(path), "data.time_col": "timestamp", "data.entity_col": "machine",
                 "data.event_col": "failure", "data.horizon": 3, "window.length": "auto", "window.auto_min": 6,
                 "window.auto_max": 16, "split.folds": 2, "split.val_fraction": 0.3, "train.epochs": 1,
                 "train.batch_size": 64, "model.hidden": 8, "model.layers": 1, "tune.hidden": [8],
                 "tune.layers": [1], "tune.window": [6, 10], "tune.batch_size": [64], "tune.parallel": 2,
                 "tune.prune_startup": 1, "register.experiment": "tuning-test", **FEW_STEPS, **extra}
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
    make_telemetry(rows=ROWS).to_csv(data, index=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTM_PIPELINE_HOME", str(root / "home"))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    seen, original = [], stage.trial_fit

    def recording(train, val, config):
        seen.append((train.length, train.ends.copy(), val.ends.copy()))
        return original(train, val, config)

    mp.setattr(stage, "trial_fit", recording)
    result = tuning_flow(tiny_config(data), trials=TRIALS, out=str(root / "best.yaml"))
    yield {"result": result, "seen": seen, "data": data, "root": root,
           "before": load_config(root / "best.yaml").tune.tuned_before,
           "client": MlflowClient(settings.tracking_uri(), settings.tracking_uri())}
    mp.undo()


def test_trial_zero_is_the_config_as_given_and_every_trial_is_a_nested_run(tuned):
    result, client = tuned["result"], tuned["client"]
    trials = result["trials"]
    assert [t["number"] for t in trials] == list(range(TRIALS))
    length = result["window_length"]
    assert trials[0]["params"] == {"model.hidden": 8, "model.layers": 1, "window.length": length,
                                   "train.batch_size": 64, "model.cell": "lstm", "model.pooling": "last",
                                   "model.dropout": 0.2, "train.lr": TrainConfig().lr}
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
            # episodes on the inner folds' validation windows, summed over folds, beside the objective
            episode = trial["episode"]
            assert episode["episodes_total"] >= 1 and 0 <= episode["episodes_caught_total"] <= episode["episodes_total"]
            assert child.data.metrics["val_episode/episodes_total"] == episode["episodes_total"]
            assert child.data.metrics["val_episode/episode_recall_mean"] == pytest.approx(episode["episode_recall_mean"])
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
    # the flow run's name, which the MLflow run takes: the resolved window, then the minute the run was due
    assert re.fullmatch(rf"tune-telemetry-w{result['window_length']}-\d{{4}}-\d{{4}}", parent.info.run_name)
    plots = {a.path for a in client.list_artifacts(parent.info.run_id, "plots")}
    assert {"plots/acf.png", "plots/optuna_history.png"} <= plots
    assert {"best.yaml", "tuning.json"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}


def _first_outer_test_start(data, config, lengths) -> int:
    """The earliest start of an outer test block over every window length the search may pick."""
    return min(_folds(data, config, n)[2][0].bounds["test_start"] for n in lengths)


def test_trials_read_inner_folds_before_every_outer_test_block(tuned):
    """Every fit saw exactly an inner fold's training and validation windows, and neither they nor the rows and
    targets they read reach the first outer test block of any length the search could pick."""
    config, seen, result = tiny_config(tuned["data"]), tuned["seen"], tuned["result"]
    lengths = {6, 10, result["window_length"]}
    start = _first_outer_test_start(tuned["data"], config, lengths)
    assert len(seen) >= TRIALS  # at least one fold per trial; two for each one not pruned
    for length, train_ends, val_ends in seen:
        series, index, _ = _folds(tuned["data"], config, length)
        inner = tuning_folds(series, index, config.split, config.tune.inner_folds, tuned["before"])
        fold = next(f for f in inner if np.array_equal(index.ends[f.val], val_ends))
        assert np.array_equal(index.ends[fold.train], train_ends)
        reach = np.concatenate([index.reach[fold.train], index.reach[fold.val]])
        assert series.time[reach].max() < start


def test_poisoned_outer_test_blocks_leave_the_search_bit_identical(tuned, tmp_path, monkeypatch):
    """Every row of every outer test block (of any length in the search) gets absurd features and shuffled
    events: the objective, every trial and the chosen parameters come out bit for bit the same."""
    from flows.tuning import tuning_flow

    monkeypatch.setenv("LSTM_PIPELINE_HOME", str(tmp_path / "home"))
    result = tuned["result"]
    start = _first_outer_test_start(tuned["data"], tiny_config(tuned["data"]), {6, 10, result["window_length"]})
    df = pd.read_csv(tuned["data"])
    late = (pd.to_datetime(df["timestamp"]).astype("datetime64[ns]").astype("int64") >= start).to_numpy()
    assert 0.5 < late.mean() < 1  # the outer test blocks are most of the data
    rng = np.random.default_rng(7)
    df.loc[late, ["temp", "vibration"]] = rng.normal(1e5, 1e4, size=(late.sum(), 2))
    df.loc[late, "failure"] = rng.permutation(df.loc[late, "failure"].to_numpy())
    poisoned = tmp_path / "telemetry.csv"
    df.to_csv(poisoned, index=False)
    again = tuning_flow(tiny_config(poisoned), trials=TRIALS, out=str(tmp_path / "best.yaml"))
    assert again["window_length"] == result["window_length"]
    keys = ("number", "state", "params", "value", "fold_values")
    assert [{k: t[k] for k in keys} for t in again["trials"]] == [{k: t[k] for k in keys} for t in result["trials"]]
    assert again["best"] == result["best"]
    assert again["tuned_on"] == result["tuned_on"] and again["inner_folds"] == result["inner_folds"]


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
    assert best.tune.tuned_on == result["tuned_on"] and best.tune.tuned_on.startswith("windows whose rows and targets")
    # what `lstm-pipeline train --config best.yaml --flags` does: the YAML, then flags on top
    cfg = load_config(path, {"evaluate.baselines": ["prior"], "register.enabled": False})
    summary = training_pipeline(cfg)
    assert summary["config"]["window"]["length"] == best.window.length
    assert np.isfinite(summary["aggregate"]["lstm"]["pr_auc_mean"])
    # the summary records which rows tuning saw, and every reported (outer) test block lies after them
    assert summary["config"]["tune"]["tuned_on"] == result["tuned_on"]
    assert len(summary["folds"]) == best.split.folds


def test_a_tuned_config_refuses_folds_that_would_test_what_tuning_read(tuned):
    from flows.training import training_pipeline
    from lstm_core.data import DataError

    cfg = load_config(tuned["root"] / "best.yaml", {"split.folds": 5, "register.enabled": False})
    with pytest.raises(DataError, match="this config was tuned on windows whose rows .* the first test block starts at"):
        training_pipeline(cfg)


def test_an_entity_split_tuned_on_its_first_block_refuses_a_split_that_tests_those_entities():
    """Split by entity, tune reads the first of the K+1 entity blocks; more folds would test some of them."""
    from lstm_core.data import DataError
    from lstm_core.splits import tuning_scope
    from tasks.data import _check_tuned_rows
    from tests.conftest import make_telemetry

    df = make_telemetry(machines=6, rows=40)
    cfg = load_config(None, {"data.time_col": "timestamp", "data.entity_col": "machine", "data.event_col": "failure",
                             "split.by": "entity", "split.folds": 2})
    series = to_series(df, resolve_spec(df, cfg.data))
    before, where = tuning_scope(series, cfg, 8)
    assert (before, where) == (2, "entities m0 … m1 (the first of 3 entity blocks; the outer test blocks are "
                                  "later entities)")
    tuned = cfg.model_copy(update={"tune": cfg.tune.model_copy(update={"tuned_on": where, "tuned_before": before})})
    more = tuned.model_copy(update={"split": tuned.split.model_copy(update={"folds": 5})})  # blocks of one entity
    with pytest.raises(DataError, match="tuned on entities m0 … m1 .* the first test block starts at entity 2"):
        _check_tuned_rows(series, [], more)


def test_a_trial_of_averaged_networks_is_scored_as_their_average():
    """A seed ensemble's trial value is the validation PR-AUC of the averaged probabilities; one network's is the
    PR-AUC of its kept weights."""
    from sklearn.metrics import average_precision_score

    from lstm_core.config import load_config
    from tasks.tuning import trial_fit
    from tests.core.test_ensemble import planted

    train, val = planted(120, 0), planted(60, 1)
    base = {"train.epochs": 2, "train.min_steps": 0, "train.evaluations": 2, "train.batch_size": 32,
            "model.hidden": 8, "model.layers": 1}
    value, _, model = trial_fit(train, val, load_config(None, {**base, "model.ensemble_seeds": 2}))
    assert len(model.results) == 2
    assert value == pytest.approx(average_precision_score(val.y, model.predict_proba(val)))
    value, _, model = trial_fit(train, val, load_config(None, base))
    assert len(model.results) == 1 and value == model.results[0].best_val_pr_auc
