"""The resampling comparison end to end on tiny data: shared folds, one MLflow child run per strategy, the table."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow import MlflowClient

from lstm_core.config import load_config
from lstm_pipeline import settings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]

FOLDS = 2
# fold 1 has 3 positive training windows, too few for SMOTE's 5 neighbours: one strategy failing must not
# stop the others.
STRATEGIES = ["none", "class_weight", "random_over", "balanced_bagging", "smote"]


@pytest.fixture(scope="module")
def compared(tmp_path_factory, prefect_harness):
    from tests.conftest import make_telemetry

    root = tmp_path_factory.mktemp("compare")
    data = root / "telemetry.csv"
    make_telemetry().to_csv(data, index=False)
    mp = pytest.MonkeyPatch()
    mp.setenv("LSTM_PIPELINE_HOME", str(root / "home"))
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.chdir(root)
    from flows.compare import compare_resampling

    config = load_config(None, {
        "data.path": str(data), "data.time_col": "timestamp", "data.entity_col": "machine",
        "data.event_col": "failure", "data.horizon": 3, "window.length": 8, "split.folds": FOLDS,
        "split.val_fraction": 0.3, "train.epochs": 2, "train.min_steps": 20, "train.batch_size": 64, "model.hidden": 8, "model.layers": 1,
        "resample.bagging_estimators": 2,
        "evaluate.baselines": ["prior", "logistic"], "register.model_name": "never-registered-compare",
    })
    result = compare_resampling(config, STRATEGIES)
    yield {"result": result, "client": MlflowClient(settings.tracking_uri(), settings.tracking_uri())}
    mp.undo()


def _children(client: MlflowClient, run_id: str) -> dict:
    parent = client.get_run(run_id)
    runs = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    return {r.info.run_name: r for r in runs}


def test_parent_run_and_one_child_run_per_strategy(compared):
    client, result = compared["client"], compared["result"]
    run_id = result["mlflow"]["run_id"]
    parent = client.get_run(run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["pipeline"] == "compare_resampling"
    assert parent.data.params["compare.strategies"] == ",".join(STRATEGIES)
    assert "resample.strategy" not in parent.data.params  # the parent is not one strategy
    assert {"baselines/prior/pr_auc_mean", "baselines/logistic/pr_auc_mean", "LSTM/none/pr_auc_mean"} <= set(parent.data.metrics)
    children = _children(client, run_id)
    assert sorted(children) == sorted(STRATEGIES)
    for name, child in children.items():
        assert child.data.tags["strategy"] == name
        assert child.data.params["resample.strategy"] == name
    for name in STRATEGIES[:-1]:
        child = children[name]
        assert child.info.status == "FINISHED"
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "LSTM/pr_auc")]
        assert sorted(steps) == list(range(1, FOLDS + 1))  # one point per fold
        assert child.data.metrics["LSTM/pr_auc_mean"] == pytest.approx(result["strategies"][name]["metrics"]["pr_auc_mean"])
    assert children["smote"].info.status == "FAILED"
    assert "SMOTE needs more positive training windows than k_neighbors=5; this fold has 3" in \
        children["smote"].data.tags["error"]
    # defaults resolved per strategy: over-samplers aim at 0.5, the bagging draws are balanced
    assert children["random_over"].data.params["resample.ratio"] == "0.5"
    assert children["balanced_bagging"].data.params["resample.ratio"] == "1.0"
    assert client.search_registered_models("name = 'never-registered-compare'") == []


def test_every_strategy_is_scored_on_the_same_test_windows(compared):
    result = compared["result"]
    test_windows = [f["test"]["windows"] for f in result["folds"]]
    ran = {s: out for s, out in result["strategies"].items() if out["status"] == "ok"}
    assert set(ran) == set(STRATEGIES[:-1])
    for out in ran.values():
        assert [f["metrics"]["n"] for f in out["folds"]] == test_windows
    # and on the same training windows before resampling
    for k in range(FOLDS):
        before = {(o["folds"][k]["resample"]["positives_before"], o["folds"][k]["resample"]["negatives_before"])
                  for o in ran.values()}
        assert len(before) == 1


def test_strategies_did_what_they_say(compared):
    out = compared["result"]["strategies"]
    for f in out["random_over"]["folds"]:
        info = f["resample"]
        assert info["positives_after"] == int(info["negatives_before"] * 0.5)  # imbalanced-learn's float rule
        assert info["synthetic"] == info["positives_after"] - info["positives_before"]
    for f in out["class_weight"]["folds"]:
        info = f["resample"]
        assert info["pos_weight"] == pytest.approx(info["negatives_before"] / info["positives_before"])
    for f in out["balanced_bagging"]["folds"]:
        assert f["resample"]["members"] == 2
        assert f["resample"]["negatives_per_member"] == f["resample"]["positives_before"]
    assert "resample.allow_fallback=true" in out["smote"]["error"]


def test_table_artifact_and_mlflow_comparison_files(compared):
    from prefect.artifacts import Artifact

    client, result = compared["client"], compared["result"]
    artifact = Artifact.get("resampling-comparison")
    rows = json.loads(artifact.data)
    assert [r["model"] for r in rows] == [f"lstm + {s}" for s in STRATEGIES] + [f"baseline: {result['best_baseline']}"]
    none = next(r for r in result["rows"] if r["strategy"] == "none")
    assert rows[0]["PR-AUC"] == f"{none['pr_auc_mean']:.3f} ± {none['pr_auc_std']:.3f}"
    assert rows[0]["ΔPR-AUC vs none"] == "+0.000"
    assert rows[-2]["status"].startswith("failed: ")
    run_id = result["mlflow"]["run_id"]
    files = {a.path for a in client.list_artifacts(run_id, "comparison")}
    assert files == {"comparison/resampling_comparison.csv", "comparison/resampling_comparison.json"}
    assert {a.path for a in client.list_artifacts(run_id, "plots")} == {"plots/resampling_pr_auc.png"}
    table = pd.read_csv(client.download_artifacts(run_id, "comparison/resampling_comparison.csv"))
    assert list(table["status"]) == ["ok"] * 4 + ["failed", "baseline"]
    assert table.loc[0, "pr_auc_mean"] == pytest.approx(none["pr_auc_mean"])
    assert result["verdict"].startswith("Best strategy on mean test PR-AUC:")
