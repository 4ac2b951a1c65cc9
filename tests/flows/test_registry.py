"""Gate, promote and rollback against real MLflow registries: the embedded SQLite store and a server on Postgres."""
from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from mlflow import MlflowClient

from lstm_pipeline import registry, tracking


@pytest.fixture
def name(tracking_store) -> str:
    """A fresh registered model (names are unique: the Postgres server is shared by the session)."""
    model = f"m-{uuid.uuid4().hex[:8]}"
    tracking.client().create_registered_model(model)
    return model


def add_version(name: str, pr_auc: float, baseline_pr_auc: float = 0.5, data_hash: str = "h1",
                folds: tuple[float, ...] = (), window: int = 24, tags: dict | None = None) -> int:
    """A version whose training run logged the config that fixes its test windows and, with ``folds``, one
    nested run per fold holding the LSTM's and hgb's test PR-AUC (hgb at ``baseline_pr_auc`` in each)."""
    c = tracking.client()
    exp = tracking.experiment_id("gate-test")
    run = c.create_run(exp)
    for key, value in {"data.event_col": "failure", "data.horizon": "3", "window.length_resolved": str(window),
                       "split.by": "time", "split.folds": str(len(folds) or 3)}.items():
        c.log_param(run.info.run_id, key, value)
    for k, value in enumerate(folds, 1):
        child = c.create_run(exp, tags={"mlflow.parentRunId": run.info.run_id, "fold": str(k)})
        c.log_metric(child.info.run_id, "lstm_pr_auc", value)
        c.log_metric(child.info.run_id, "baselines/hgb/pr_auc", baseline_pr_auc)
    v = c.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
                               tags={"lstm_pr_auc_mean": f"{pr_auc:.4f}", "best_baseline": "hgb",
                                     "best_baseline_pr_auc_mean": f"{baseline_pr_auc:.4f}", "data.hash": data_hash,
                                     "run_id": run.info.run_id, **(tags or {})})
    return int(v.version)


def champion(c: MlflowClient, name: str) -> int:
    return int(c.get_model_version_by_alias(name, "champion").version)


def test_gate_promotes_then_refuses_a_worse_model_fold_by_fold(name):
    c = tracking.client()
    v1 = add_version(name, 0.75, folds=(0.75, 0.75, 0.75))
    v2 = add_version(name, 0.625, folds=(0.5, 0.75, 0.625))
    assert registry.apply_gate(c, name, v1).promote
    assert champion(c, name) == v1
    decision = registry.apply_gate(c, name, v2)
    assert not decision.promote and champion(c, name) == v1
    tags = c.get_model_version(name, str(v2)).tags
    assert tags["gate.decision"] == "refused"
    assert tags["gate.failed"].startswith("does not beat champion v1 fold by fold on the same test windows: "
                                          "mean paired gain -0.1250 over 3 folds, not worse in 1 of 3")
    assert tags["gate.passed"].startswith("the LSTM beats hgb fold by fold")
    # the whole decision, failed and passed rules apart, on the version's page; a retried gate replaces it
    c.update_model_version(name, str(v2), description="Trained by run x.")
    registry.apply_gate(c, name, v2)
    registry.apply_gate(c, name, v2)
    text = c.get_model_version(name, str(v2)).description
    assert text.startswith("Trained by run x.\n\n**Gate: not promoted**\n\nFailed:\n- does not beat champion v1")
    assert text.count("**Gate: ") == 1 and "\n\nPassed:\n- the LSTM beats hgb fold by fold" in text


def test_gate_does_not_compare_a_champion_with_other_test_windows(name):
    c = tracking.client()
    v1 = add_version(name, 0.875, folds=(0.875, 0.875, 0.875), window=48)
    v2 = add_version(name, 0.625, folds=(0.625, 0.625, 0.625))
    assert registry.apply_gate(c, name, v1).promote
    decision = registry.apply_gate(c, name, v2)
    assert decision.promote and champion(c, name) == v2
    assert "champion v1 not compared: its test windows differ (window 48 rows, max gap None ≠ 24 rows, max gap " \
           "None)" in c.get_model_version(name, str(v2)).tags["gate.reasons"]


def test_gate_refuses_a_model_that_does_not_beat_the_baseline(name):
    c = tracking.client()
    v1 = add_version(name, 0.52, baseline_pr_auc=0.50)
    assert not registry.apply_gate(c, name, v1, margin=0.05).promote
    assert "champion" not in c.get_registered_model(name).aliases


def test_gate_refuses_a_final_model_without_its_holdout_pr_auc_and_reports_one(name):
    c = tracking.client()
    v1 = add_version(name, 0.75, folds=(0.75, 0.75, 0.75), tags={"final_pr_auc": "nan", "final_mcc": "0.5"})
    decision = registry.apply_gate(c, name, v1)
    assert not decision.promote and "never evaluated is not promoted" in decision.failed[0]
    v2 = add_version(name, 0.75, folds=(0.75, 0.75, 0.75), tags={"final_pr_auc": "0.625", "final_mcc": "0.5"})
    decision = registry.apply_gate(c, name, v2)
    assert decision.promote and "holdout PR-AUC 0.6250, MCC 0.5000" in " ".join(decision.passed)


def test_promote_by_hand_and_roll_back_twice(name):
    c = tracking.client()
    v1, v2, v3 = add_version(name, 0.7), add_version(name, 0.8), add_version(name, 0.9)
    for v in (v1, v2, v3):
        registry.promote(c, name, v)
    assert registry.history(c, name) == [v1, v2, v3]
    assert registry.rollback(c, name) == (v3, v2) and champion(c, name) == v2
    assert registry.rollback(c, name) == (v2, v1) and champion(c, name) == v1
    with pytest.raises(registry.RegistryError, match="no champion before version 1"):
        registry.rollback(c, name)
    assert c.get_model_version(name, str(v1)).tags["champion.reason"] == "rollback from version 2"


def test_promote_unknown_version_is_a_clear_error(name):
    with pytest.raises(registry.RegistryError, match=f"model '{name}' has no version 7"):
        registry.promote(tracking.client(), name, 7)


def test_rollback_without_champion_is_a_clear_error(name):
    with pytest.raises(registry.RegistryError, match="no champion to roll back"):
        registry.rollback(tracking.client(), name)


def test_concurrent_registrations_get_distinct_versions(name):
    """Two pipeline runs registering the same name at once: every registration gets its own version."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        versions = list(pool.map(lambda i: add_version(name, 0.6 + i / 100), range(8)))
    assert sorted(versions) == list(range(1, 9))
    assert len(tracking.client().search_model_versions(f"name='{name}'")) == 8


def test_promote_and_rollback_commands(name):
    from typer.testing import CliRunner

    from lstm_app.cli import app

    v1, v2 = add_version(name, 0.7), add_version(name, 0.8)
    runner = CliRunner()
    for v in (v1, v2):
        assert runner.invoke(app, ["promote", "--model-name", name, "--version", str(v)]).exit_code == 0
    result = runner.invoke(app, ["rollback", "--model-name", name])
    assert result.exit_code == 0 and f"champion version {v2} → version {v1}" in result.output
    refused = runner.invoke(app, ["rollback", "--model-name", name])
    assert refused.exit_code == 2 and "no champion before version 1" in refused.output


def test_gate_judges_an_episode_metric_read_from_the_fold_runs(name):
    """register.gate_metric=episode_recall: the fold runs' LSTM/episode/... and baselines/hgb/episode/... pair up,
    while PR-AUC on the same version would refuse it."""
    c = tracking.client()
    v = add_version(name, 0.25, baseline_pr_auc=0.5, folds=(0.25, 0.25, 0.25))  # loses on PR-AUC
    run_id = c.get_model_version(name, str(v)).tags["run_id"]
    fold_runs = c.search_runs([c.get_run(run_id).info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    for child in fold_runs:  # episode recall 0.75 against hgb's 0.5 in every fold
        c.log_metric(child.info.run_id, "LSTM/episode/episode_recall", 0.75)
        c.log_metric(child.info.run_id, "baselines/hgb/episode/episode_recall", 0.5)
    assert registry.candidate(c, name, v).folds == (0.25,) * 3  # PR-AUC by default
    assert registry.candidate(c, name, v, "episode_recall").baseline_folds == (0.5,) * 3
    decision = registry.apply_gate(c, name, v, metric="episode_recall")
    assert decision.promote and champion(c, name) == v
    assert decision.passed[0].startswith("the LSTM beats hgb fold by fold on episode_recall: mean paired gain "
                                          "+0.2500 over 3 folds")
