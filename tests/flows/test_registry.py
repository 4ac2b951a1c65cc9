"""Gate, promote and rollback against a real MLflow registry (the embedded SQLite store)."""
from __future__ import annotations

import pytest
from mlflow import MlflowClient

from lstm_pipeline import registry, settings, tracking


@pytest.fixture
def client(home) -> MlflowClient:
    c = tracking.client()
    c.create_registered_model("m")
    return c


def add_version(c: MlflowClient, pr_auc: float, baseline_pr_auc: float = 0.5, data_hash: str = "h1") -> int:
    run = c.create_run(tracking.experiment_id("gate-test"))
    v = c.create_model_version("m", source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id,
                               tags={"lstm_pr_auc_mean": f"{pr_auc:.4f}", "best_baseline": "hgb",
                                     "best_baseline_pr_auc_mean": f"{baseline_pr_auc:.4f}", "data.hash": data_hash})
    return int(v.version)


def champion(c: MlflowClient) -> int:
    return int(c.get_model_version_by_alias("m", "champion").version)


def test_gate_promotes_then_refuses_a_worse_model_on_the_same_data(client):
    v1, v2 = add_version(client, 0.70), add_version(client, 0.65)
    assert registry.apply_gate(client, "m", v1, margin=0.05).promote
    assert champion(client) == v1
    decision = registry.apply_gate(client, "m", v2, margin=0.05)
    assert not decision.promote and champion(client) == v1
    tags = client.get_model_version("m", str(v2)).tags
    assert tags["gate.decision"] == "refused"
    assert "worse than champion v1's 0.7000 on the same data" in tags["gate.reasons"]


def test_gate_refuses_a_model_that_does_not_beat_the_baseline(client):
    v1 = add_version(client, 0.52, baseline_pr_auc=0.50)
    decision = registry.apply_gate(client, "m", v1, margin=0.05)
    assert not decision.promote
    assert "champion" not in client.get_registered_model("m").aliases


def test_promote_by_hand_and_roll_back_twice(client):
    v1, v2, v3 = add_version(client, 0.7), add_version(client, 0.8), add_version(client, 0.9)
    registry.promote(client, "m", v1)
    registry.promote(client, "m", v2)
    registry.promote(client, "m", v3)
    assert registry.history(client, "m") == [v1, v2, v3]
    assert registry.rollback(client, "m") == (v3, v2) and champion(client) == v2
    assert registry.rollback(client, "m") == (v2, v1) and champion(client) == v1
    with pytest.raises(registry.RegistryError, match="no champion before version 1"):
        registry.rollback(client, "m")
    assert client.get_model_version("m", str(v1)).tags["champion.reason"] == "rollback from version 2"


def test_promote_unknown_version_is_a_clear_error(client):
    with pytest.raises(registry.RegistryError, match="model 'm' has no version 7"):
        registry.promote(client, "m", 7)


def test_rollback_without_champion_is_a_clear_error(client):
    with pytest.raises(registry.RegistryError, match="no champion to roll back"):
        registry.rollback(client, "m")
    assert settings.is_embedded()
