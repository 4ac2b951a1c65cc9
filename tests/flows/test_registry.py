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


def add_version(name: str, pr_auc: float, baseline_pr_auc: float = 0.5, data_hash: str = "h1") -> int:
    c = tracking.client()
    run = c.create_run(tracking.experiment_id("gate-test"))
    v = c.create_model_version(name, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
                               tags={"lstm_pr_auc_mean": f"{pr_auc:.4f}", "best_baseline": "hgb",
                                     "best_baseline_pr_auc_mean": f"{baseline_pr_auc:.4f}", "data.hash": data_hash})
    return int(v.version)


def champion(c: MlflowClient, name: str) -> int:
    return int(c.get_model_version_by_alias(name, "champion").version)


def test_gate_promotes_then_refuses_a_worse_model_on_the_same_data(name):
    c = tracking.client()
    v1, v2 = add_version(name, 0.70), add_version(name, 0.65)
    assert registry.apply_gate(c, name, v1, margin=0.05).promote
    assert champion(c, name) == v1
    decision = registry.apply_gate(c, name, v2, margin=0.05)
    assert not decision.promote and champion(c, name) == v1
    tags = c.get_model_version(name, str(v2)).tags
    assert tags["gate.decision"] == "refused"
    assert "worse than champion v1's 0.7000 on the same data" in tags["gate.reasons"]


def test_gate_refuses_a_model_that_does_not_beat_the_baseline(name):
    c = tracking.client()
    v1 = add_version(name, 0.52, baseline_pr_auc=0.50)
    assert not registry.apply_gate(c, name, v1, margin=0.05).promote
    assert "champion" not in c.get_registered_model(name).aliases


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

    from lstm_pipeline.cli import app

    v1, v2 = add_version(name, 0.7), add_version(name, 0.8)
    runner = CliRunner()
    for v in (v1, v2):
        assert runner.invoke(app, ["promote", "--model-name", name, "--version", str(v)]).exit_code == 0
    result = runner.invoke(app, ["rollback", "--model-name", name])
    assert result.exit_code == 0 and f"champion version {v2} → version {v1}" in result.output
    refused = runner.invoke(app, ["rollback", "--model-name", name])
    assert refused.exit_code == 2 and "no champion before version 1" in refused.output
