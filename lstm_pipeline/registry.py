"""Registry lifecycle: the gate between 'challenger' and 'champion', and moving the champion by hand.

Every champion move is appended to the registered model's ``champion.history`` tag (versions, oldest
first), so ``rollback`` knows where to go back to, and tagged on the version with when and why.
"""
from __future__ import annotations

import math
import time

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from lstm_pipeline.gate import Candidate, Decision, decide

CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY = "champion.history"


class RegistryError(ValueError):
    """A registry request that cannot be carried out (unknown model, version or alias)."""


def _version(client: MlflowClient, name: str, alias: str):
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def candidate(client: MlflowClient, name: str, version: int) -> Candidate:
    """Read the gate's inputs back from a version's tags (written at registration)."""
    tags = client.get_model_version(name, str(version)).tags

    def number(key: str) -> float:
        try:
            return float(tags.get(key, "nan"))
        except ValueError:
            return math.nan

    return Candidate(int(version), number("lstm_pr_auc_mean"), tags.get("best_baseline") or None,
                     number("best_baseline_pr_auc_mean"), tags.get("data.hash", ""))


def history(client: MlflowClient, name: str) -> list[int]:
    raw = client.get_registered_model(name).tags.get(HISTORY, "")
    return [int(v) for v in raw.split(",") if v]


def set_champion(client: MlflowClient, name: str, version: int, reason: str) -> None:
    """Point 'champion' at ``version`` and record the move."""
    try:
        client.get_model_version(name, str(version))
    except MlflowException as exc:
        raise RegistryError(f"model '{name}' has no version {version}") from exc
    client.set_registered_model_alias(name, CHAMPION, str(version))
    client.set_registered_model_tag(name, HISTORY, ",".join(map(str, [*history(client, name), version])))
    client.set_model_version_tag(name, str(version), "champion.since", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    client.set_model_version_tag(name, str(version), "champion.reason", reason)


def apply_gate(client: MlflowClient, name: str, version: int, margin: float) -> Decision:
    """Decide whether ``version`` (the challenger) becomes champion; write the decision as version tags."""
    current = _version(client, name, CHAMPION)
    champion = candidate(client, name, int(current.version)) if current is not None else None
    decision = decide(candidate(client, name, version), champion, margin)
    for key, value in decision.tags().items():
        client.set_model_version_tag(name, str(version), key, value)
    if decision.promote:
        set_champion(client, name, version, "gate: " + " | ".join(decision.reasons))
    return decision


def promote(client: MlflowClient, name: str, version: int) -> None:
    """Make ``version`` the champion by hand, bypassing the gate (recorded as such)."""
    set_champion(client, name, version, "promoted by hand")


def rollback(client: MlflowClient, name: str) -> tuple[int, int]:
    """Give 'champion' back to the version that held it before the current one; return (from, to)."""
    current = _version(client, name, CHAMPION)
    if current is None:
        raise RegistryError(f"model '{name}' has no champion to roll back")
    past = [v for v in history(client, name) if v != int(current.version)]
    if not past:
        raise RegistryError(f"model '{name}' has had no champion before version {current.version}")
    target = past[-1]
    client.set_registered_model_alias(name, CHAMPION, str(target))
    # drop the rolled-back version's entries after the target so a second rollback goes further back
    kept = history(client, name)
    kept = kept[:len(kept) - kept[::-1].index(target)]
    client.set_registered_model_tag(name, HISTORY, ",".join(map(str, kept)))
    client.set_model_version_tag(name, str(target), "champion.reason", f"rollback from version {current.version}")
    return int(current.version), target
