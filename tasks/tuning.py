"""Tuning stages: the parent run, one trial on one fold, each trial's nested run, and the outcome."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from sklearn.metrics import average_precision_score

from lstm_core.config import PipelineConfig
from lstm_core.ensemble import FoldModel, fit_model
from lstm_core.episodes import RowLabels
from lstm_core.evaluate import evaluate_fold
from lstm_core.resample import resample
from lstm_core.splits import fold_summary, tuning_folds, tuning_scope
from lstm_core.windows import WindowSet
from lstm_pipeline import artifacts, report, settings, tracking
from lstm_pipeline.execution import releases_memory
from lstm_pipeline.tuning import (
    history_plot,
    params_text,
    trials_table,
    tune_run_name,
    write_yaml,
)
from tasks.folds import set_torch_threads
from tasks.policy import COMPUTE_RETRY, IO_RETRY, cached


@task(name="start-tuning", **IO_RETRY)
@releases_memory
def start_tuning(config: PipelineConfig, loaded: dict, trials: int) -> str:
    """Open the tuning run: flattened config, the data fingerprint and the number of trials as params."""
    fp = loaded["fingerprint"]
    params = {**config.flat(), **{f"data.fingerprint.{k}": v for k, v in fp.items()}, "tune.trials_run": trials}
    return tracking.start_run(config.register.experiment, tune_run_name(config), params,
                              {"pipeline": "tuning", "data.hash": fp["hash"]})


def trial_fit(train: WindowSet, val: WindowSet, config: PipelineConfig) -> tuple[float, int, FoldModel]:
    """Resample the training windows, train, and score the validation windows: (PR-AUC, best evaluation, model).

    One network reports the validation PR-AUC of its kept weights; averaged networks (balanced bagging, a seed
    ensemble) are scored on the validation windows as the average they are."""
    res = resample(train, config.resample, config.train.seed)
    model = fit_model(res.windows, val, config.model, config.train, config.resample, res.pos_weight)
    if len(model.results) == 1:
        value = float(model.results[0].best_val_pr_auc)
    else:
        value = (float(average_precision_score(val.y, model.predict_proba(val))) if 0 < val.y.sum() < len(val)
                 else float("nan"))
    return value, int(np.median([r.best_epoch for r in model.results])), model


@task(name="split-inner", **COMPUTE_RETRY, **cached("data", "split", "tune"))
@releases_memory
def split_inner(windows: dict, config: PipelineConfig, longest: int) -> dict:
    """The tuning's inner walk-forward folds, over the windows before the first outer test block only.

    ``longest`` is the longest window the search may pick: the boundary holds for every length up to it."""
    series, index = artifacts.get_series(windows["series_uri"])
    before, where = tuning_scope(series, config, longest)
    folds = tuning_folds(series, index, config.split, config.tune.inner_folds, before)
    for f in folds:
        get_run_logger().info("inner fold %d: train %d / val %d windows (%d / %d positive), %d purged", f.k,
                              len(f.train), len(f.val), index.y[f.train].sum(), index.y[f.val].sum(), f.purged)
    return {"folds_uri": artifacts.put_folds(folds), "folds": [fold_summary(series, index, f) for f in folds],
            "before": int(before), "tuned_on": where}


@task(name="tune-fold", task_run_name="trial-{trial}-fold-{k}", **COMPUTE_RETRY)
@releases_memory
def fit_trial_fold(fold_uri: str, k: int, trial: int, config: PipelineConfig) -> dict:
    """Train one trial's network on inner fold k's training part; the objective's value is its validation
    PR-AUC. Inner folds lie before the first outer test block, and their own test part is not read either."""
    set_torch_threads(config)  # as the training stage does: the same sums, so the same values, on any executor
    sets, rows = artifacts.get_windowsets(fold_uri)
    started = time.perf_counter()
    value, best_epoch, model = trial_fit(sets["train"], sets["val"], config)
    # How the trial warns, at the threshold evaluate.threshold_metric picks on these validation windows: the
    # episode metrics an operator reads, beside the objective (they do not steer the search).
    episode = {}
    if 0 < sets["val"].y.sum() < len(sets["val"]):
        episode = evaluate_fold(model, sets["train"], sets["val"], sets["val"], config.evaluate.threshold_metric,
                                fit=False, labels=RowLabels.from_arrays(rows),
                                zone_rows=config.evaluate.episode_zone_rows).episode
    get_run_logger().info("trial %d, fold %d: validation PR-AUC %.4f (best epoch %d)%s", trial, k, value, best_epoch,
                          report.episode_sentence(episode))
    return {"val_pr_auc": value, "best_epoch": best_epoch, "episode": episode,
            "seconds": time.perf_counter() - started}


@task(name="start-trial", task_run_name="start-trial-{number}", **IO_RETRY)
@releases_memory
def start_trial(parent_run_id: str, config: PipelineConfig, number: int, params: dict) -> str:
    """A nested run per trial, holding the whole config the trial trained with."""
    tags = {"trial": str(number), "trial.as_configured": str(number == 0).lower(), "trial.params": params_text(params)}
    return tracking.start_run(config.register.experiment, f"trial-{number}", {**config.flat(), "trial.number": number},
                              tags, parent_run_id=parent_run_id)


@task(name="log-trial", task_run_name="log-trial-{number}", **IO_RETRY)
@releases_memory
def log_trial(run_id: str, number: int, outcome: dict) -> None:
    """Per-fold validation PR-AUC (step = fold), their mean, and how the trial ended."""
    for k, value in enumerate(outcome["fold_values"], 1):
        if value is not None:
            tracking.log_metrics(run_id, {"val_pr_auc": value}, step=k)
    if outcome["value"] is not None:
        tracking.log_metrics(run_id, {"val_pr_auc_mean": outcome["value"], "seconds": outcome["seconds"]})
    tracking.log_metrics(run_id, {f"val_episode/{key}": float(v) for key, v in (outcome.get("episode") or {}).items()
                                  if np.isfinite(v)})
    tracking.set_tags(run_id, {"trial.state": outcome["state"], **({"trial.error": outcome["error"][:500]}
                                                                    if outcome.get("error") else {})})
    tracking.finish_run(run_id, "FAILED" if outcome["state"] == "FAIL" else "FINISHED")


def default_out(config: PipelineConfig) -> Path:
    """Where the best config goes unless told: <home>/tuning/<run name>-best.yaml."""
    return settings.home() / "tuning" / f"{tune_run_name(config)}-best.yaml"


@task(name="finish-tuning", **IO_RETRY)
@releases_memory
def finish_tuning(run_id: str, config: PipelineConfig, trials: list[dict], out: str | None,
                  scope: dict | None = None) -> dict:
    """Write the best config as YAML, with the rows the search read (``scope``: the inner split's
    ``tuned_on``, ``before`` and fold summaries); log it, the best params, best and as-configured values, the
    trials and the history plot to the tuning run."""
    done = [t for t in trials if t["state"] == "COMPLETE"]
    if not done:
        raise ValueError("no trial completed: " + "; ".join(f"trial {t['number']}: {t.get('error') or t['state']}"
                                                             for t in trials))
    best = max(done, key=lambda t: (t["value"], -t["number"]))  # ties go to the earlier trial (the config as given)
    default = next((t for t in trials if t["number"] == 0), None)
    default_value = default["value"] if default and default["state"] == "COMPLETE" else None
    best_config = config.with_values(best["params"])
    if scope:
        best_config = best_config.model_copy(update={"tune": best_config.tune.model_copy(
            update={"tuned_on": scope["tuned_on"], "tuned_before": scope["before"]})})
    path = write_yaml(best_config, Path(out) if out else default_out(config))
    result = {"mlflow": {"run_id": run_id, "tracking_uri": settings.tracking_uri()}, "trials": trials,
              "best": {k: best.get(k) for k in ("number", "value", "params", "fold_values", "episode")},
              "default": {"value": default_value, "params": default["params"] if default else {}},
              "improvement": None if default_value is None else best["value"] - default_value,
              "best_yaml": str(path), "window_length": config.window.length,
              "tuned_on": (scope or {}).get("tuned_on"), "inner_folds": (scope or {}).get("folds", [])}
    tracking.log_params(run_id, {f"best.{k}": v for k, v in best["params"].items()} | {"best.trial": best["number"]})
    tracking.log_metrics(run_id, {"best_val_pr_auc": best["value"], "default_val_pr_auc": default_value,
                                  "improvement_over_default": result["improvement"],
                                  "trials_complete": len(done), "trials_pruned": sum(t["state"] == "PRUNED" for t in trials)})
    tracking.log_file(run_id, path)
    tracking.log_json(run_id, result, "tuning.json")
    with tempfile.TemporaryDirectory() as tmp:
        tracking.log_file(run_id, history_plot(trials, Path(tmp) / "optuna_history.png"), "plots")
    create_table_artifact(trials_table(result), key="tuning-trials", description="Trials, best first")
    tracking.finish_run(run_id, "FINISHED")
    return json.loads(json.dumps(result, default=float))
