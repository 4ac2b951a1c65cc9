"""Registry lifecycle: the gate between 'challenger' and 'champion', and moving the champion by hand.

Every champion move is appended to the registered model's ``champion.history`` tag (versions, oldest
first), so ``rollback`` knows where to go back to, and tagged on the version with when and why.
"""
from __future__ import annotations

import math
import time

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from lstm_core.config import DataConfig, SplitConfig, WindowConfig
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


def _number(value: str | None) -> float:
    try:
        return float(value if value is not None else "nan")
    except ValueError:
        return math.nan


def setup(params: dict[str, str]) -> dict[str, str]:
    """What fixes a run's test windows, from its logged config: target definition, window and split.

    A field an older run did not log reads as its default (the value that run used)."""
    def get(section: type, name: str) -> str:
        prefix = {DataConfig: "data", WindowConfig: "window", SplitConfig: "split"}[section]
        return params.get(f"{prefix}.{name}", str(section.model_fields[name].default))

    if params.get("data.event_col") not in (None, "", "None"):
        target = f"event '{params['data.event_col']}' within {get(DataConfig, 'horizon')} rows"
    else:
        target = f"label '{params.get('data.label_col')}' looking {get(DataConfig, 'label_lookahead')} rows ahead"
    length = params.get("window.length_resolved") or get(WindowConfig, "length")
    split = ", ".join(f"{n} {get(SplitConfig, n)}" for n in ("by", "folds", "scheme", "embargo", "val_fraction",
                                                              "calibration_fraction"))
    return {"target": target, "window": f"{length} rows, max gap {get(WindowConfig, 'max_gap')}",
            "missing values": get(DataConfig, "missing"), "split": split}


def _run_record(client: MlflowClient, run_id: str | None) -> tuple[dict[str, str], list[dict[str, float]]]:
    """The training run's logged config and each fold's test metrics (fold order); empty when not found."""
    if not run_id:
        return {}, []
    try:
        run = client.get_run(run_id)
        children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'")
    except MlflowException:
        return {}, []
    folds = sorted((int(c.data.tags["fold"]), c.data.metrics) for c in children if c.data.tags.get("fold", "").isdigit())
    return run.data.params, [m for _, m in folds]


def _fold_metric(metrics: dict[str, float], *names: str) -> float:
    """The first of ``names`` a fold run logged (sectioned names, then the flat ones older runs used)."""
    return next((float(metrics[n]) for n in names if n in metrics), math.nan)


def candidate(client: MlflowClient, name: str, version: int, metric: str = "pr_auc") -> Candidate:
    """Read the gate's inputs back: the version's tags (written at registration), and from its training run
    the config that fixes the test windows and each fold's test PR-AUC (or episode ``metric``, read from the
    fold runs' 'LSTM/episode/<metric>' and 'baselines/<name>/episode/<metric>'; its means are the folds')."""
    mv = client.get_model_version(name, str(version))
    tags = mv.tags
    params, folds = _run_record(client, tags.get("run_id") or mv.run_id)
    rival = tags.get("best_baseline") or None
    if metric == "pr_auc":
        lstm = tuple(_fold_metric(f, "LSTM/pr_auc", "lstm/pr_auc", "lstm_pr_auc") for f in folds)
        base = tuple(_fold_metric(f, f"baselines/{rival}/pr_auc", f"{rival}_pr_auc") for f in folds) if rival else ()
        mine, theirs = _number(tags.get("lstm_pr_auc_mean")), _number(tags.get("best_baseline_pr_auc_mean"))
    else:
        lstm = tuple(_fold_metric(f, f"LSTM/episode/{metric}") for f in folds)
        base = tuple(_fold_metric(f, f"baselines/{rival}/episode/{metric}") for f in folds) if rival else ()
        mine, theirs = _finite_mean(lstm), _finite_mean(base)
    final = None
    if "final_pr_auc" in tags or "final_mcc" in tags:  # absent on versions registered before they were kept
        final = {"pr_auc": _number(tags.get("final_pr_auc")), "mcc": _number(tags.get("final_mcc"))}
    return Candidate(int(version), mine, rival, theirs, tags.get("data.hash", ""), lstm, base,
                     setup(params) if params else {}, final, metric)


def _finite_mean(values: tuple[float, ...]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


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


def apply_gate(client: MlflowClient, name: str, version: int, margin: float | None = None,
               metric: str = "pr_auc") -> Decision:
    """Decide whether ``version`` (the challenger) becomes champion; write the decision as version tags.

    ``margin`` None: the margin comes from the fold spread (see ``gate``). ``metric``: the per-fold test
    metric both are paired on (``register.gate_metric``)."""
    current = _version(client, name, CHAMPION)
    champion = candidate(client, name, int(current.version), metric) if current is not None else None
    decision = decide(candidate(client, name, version, metric), champion, margin)
    for key, value in decision.tags().items():
        client.set_model_version_tag(name, str(version), key, value)
    described = client.get_model_version(name, str(version)).description or ""
    gate_at = described.find("**Gate: ")
    kept = (described[:gate_at] if gate_at >= 0 else described).rstrip()  # a retried gate replaces its own text
    client.update_model_version(name, str(version), description=f"{kept}\n\n{decision.markdown()}".lstrip())
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


IDENTITY = "pipeline.identity"  # version tag: provenance.model_identity of the run that trained it


def latest_version(client: MlflowClient, name: str):
    """The highest version registered under ``name``, or None (also when the model does not exist yet)."""
    try:
        versions = client.search_model_versions(f"name='{name}'", order_by=["version_number DESC"], max_results=1)
    except MlflowException:
        return None
    return versions[0] if versions else None


def unchanged_since(client: MlflowClient, name: str, identity: str):
    """The latest version when it was trained on the same data, config and code (``identity``), else None."""
    latest = latest_version(client, name)
    return latest if latest is not None and latest.tags.get(IDENTITY) == identity else None
