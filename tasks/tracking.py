"""Tracking stages: open the MLflow run, record each fold, aggregate, refit, register, close."""
from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from lstm_core.config import PipelineConfig
from lstm_core.evaluate import FoldScore, best_baseline, summarise_episodes, summarise_models
from lstm_core.scoring import fit_final
from lstm_pipeline import (
    artifacts,
    naming,
    plots,
    progress,
    provenance,
    registry,
    report,
    tracking,
    workspace,
)
from lstm_pipeline.execution import releases_memory
from tasks.policy import COMPUTE_RETRY, IO_RETRY


@task(name="log-fold", task_run_name="log-fold-{k}", **IO_RETRY)
@releases_memory
def log_fold(run_id: str, config: PipelineConfig, k: int, summary: dict, resampled: dict, trained: dict,
             lstm: dict, baselines: dict) -> str:
    """A nested run per fold: its ranges, epoch curves and every model's test metrics."""
    # the fold run spans the fold's training, not the moment it is written down
    ended = int(1000 * trained.get("finished_at", time.time()))
    child = tracking.start_run(config.register.experiment, f"fold-{k}", report.fold_params(summary, resampled),
                               {"fold": str(k)}, parent_run_id=run_id, start_time=ended - int(1000 * trained["seconds"]))
    models = {"lstm": lstm, **baselines["models"]}
    tracking.log_metrics(child, report.model_metrics({m: out["metrics"] for m, out in models.items()}))
    tracking.log_metrics(child, report.episode_metric_keys({m: out.get("episode", {}) for m, out in models.items()}))
    tracking.log_curves(child, trained["history"], report.curve_key)
    # best_step 0: the fold kept its logistic start (training never beat it on validation)
    tracking.log_metrics(child, {"train/best_epoch": trained["best_epoch"], "train/best_step": trained.get("best_step"),
                                 "train/seconds": trained["seconds"]})
    tracking.finish_run(child, end_time=ended)
    return child


@task(name="aggregate", **IO_RETRY)
@releases_memory
def aggregate(run_id: str, config: PipelineConfig, folds: list[dict]) -> dict:
    """Mean ± std and pooled metrics per model on the parent run, with the PR-curve and training plots."""
    per_fold, ys, pooled_scores = [], [], {}
    for f in folds:
        lstm_scores = workspace.get_arrays(f["lstm"]["scores_uri"])
        base_scores = workspace.get_arrays(f["baselines"]["scores_uri"])
        ys.append(lstm_scores["y"])
        models = {"lstm": (f["lstm"], lstm_scores["lstm"])}
        models.update({n: (out, base_scores[n]) for n, out in f["baselines"]["models"].items()})
        per_fold.append({n: FoldScore(n, o["threshold"], o["metrics"], s, o.get("episode") or {})
                         for n, (o, s) in models.items()})
        for n, (_, s) in models.items():
            pooled_scores.setdefault(n, []).append(s)
    summary = summarise_models(ys, per_fold)
    episodes = summarise_episodes(per_fold)
    rival = best_baseline(summary)
    sectioned = report.model_metrics(summary)
    if rival:
        sectioned[report.metric_key("lstm", "pr_auc_gain_over_best_baseline")] = summary["lstm"]["pr_auc_mean"] - summary[rival]["pr_auc_mean"]
    first = {k: sectioned.pop(k) for k in report.KEY_METRICS if k in sectioned}
    tracking.log_metrics(run_id, first)  # logged first: the runs table shows the first keys as its columns
    tracking.log_metrics(run_id, sectioned)
    tracking.log_metrics(run_id, report.episode_metric_keys(episodes))
    for f, scores in zip(folds, per_fold, strict=True):  # one point per fold: the chart shows the spread
        tracking.log_metrics(run_id, {f"folds/{report.metric_key(n, m)}": fs.metrics[m] for n, fs in scores.items()
                                      for m in ("pr_auc", "mcc") if m in fs.metrics}, step=f["k"])
    with tempfile.TemporaryDirectory() as tmp:
        import numpy as np

        y_all = np.concatenate(ys)
        curves = {n: np.concatenate(s) for n, s in pooled_scores.items()}
        hits = np.concatenate([s >= f["lstm"]["threshold"] for s, f in zip(pooled_scores["lstm"], folds, strict=True)])
        tracking.log_file(run_id, plots.pr_curves(y_all, curves, Path(tmp) / "pr_curves.png",
                                                  "Pooled test windows over all folds", {"lstm": hits}), "plots")
        histories = {f["k"]: f["trained"]["history"] for f in folds}
        tracking.log_file(run_id, plots.training_curves(histories, Path(tmp) / "training_curves.png"), "plots")
    create_table_artifact(report.metrics_table(summary), key="walk-forward-metrics",
                          description="Test metrics over walk-forward folds (mean ± std, pooled)")
    create_table_artifact(report.fold_table([(f["k"], {n: fs.metrics for n, fs in scores.items()})
                                             for f, scores in zip(folds, per_fold, strict=True)]),
                          key="per-fold-metrics", description="Test PR-AUC and MCC per fold, LSTM against each baseline")
    if episodes:
        create_table_artifact(report.episode_table(episodes), key="episode-metrics",
                              description="Episodes caught, lead time (rows before the onset), false alarms and "
                              "onset metrics over walk-forward folds (mean ± std)")
    return {"models": summary, "episodes": episodes, "best_baseline": rival, **final_plan(config, folds)}


def final_plan(config: PipelineConfig, folds: list[dict]) -> dict:
    """How the final model trains: the folds' median best step of their median step budget, so it takes as
    many optimiser steps on the same schedule as the folds' kept weights had; their median threshold is the
    fallback when its own held-out slice cannot choose one. ``final_epochs``: the history rows it will log."""
    trained = [f["trained"] for f in folds]
    # 0 when most folds kept their logistic start: the final model is then that start, fitted on its windows
    steps = max(0, int(statistics.median(t.get("best_step", t["best_epoch"]) for t in trained)))
    budget = max(1, int(statistics.median(t.get("schedule_steps", steps) for t in trained)))
    every = max(1, -(-budget // config.train.evaluations))
    return {"final_steps": steps, "final_schedule_steps": max(budget, steps),
            "final_epochs": -(-min(steps, budget) // every),
            "final_threshold": float(statistics.median(f["lstm"]["threshold"] for f in folds))}


@task(name="refit", **COMPUTE_RETRY)
@releases_memory
def refit_final(windows: dict, config: PipelineConfig, agg: dict) -> str:
    """Train the final model, evaluate it on the latest slice it never trained on, and store the scorer.

    It trains on all but the latest ``split.val_fraction`` of the data (entities or time, as the folds split)
    for the folds' median best step count on their schedule (``final_plan``); its threshold is chosen on its
    own scores of that held-out slice. Its metrics there are ``scorer.evaluation`` (read back with
    ``final_metrics``): pr_auc, roc_auc, brier, mcc, f1, precision, recall (the threshold-dependent ones
    cross-fitted over two halves of the slice), threshold, windows, positives, train_windows, steps,
    schedule_steps, held_out (words).
    """
    series, index = artifacts.get_series(windows["series_uri"])
    # the rows were read for this task alone: scaled where they lie, not into a second array
    scorer = fit_final(series, index, config, threshold=agg["final_threshold"],
                       steps=agg.get("final_steps"), schedule_steps=agg.get("final_schedule_steps"),
                       hold_out=config.split.val_fraction, in_place=True,
                       on_epoch=lambda row: progress.report("epoch", fold="final", **row))
    ev = scorer.evaluation
    if ev:
        get_run_logger().info("final model: %d optimiser steps on %d windows; on %s (%d windows it never trained "
                              "on): PR-AUC %.4f, MCC %.4f, F1 %.4f at threshold %.3f", ev["steps"],
                              ev["train_windows"], ev["held_out"], ev["windows"], ev["pr_auc"], ev["mcc"], ev["f1"],
                              ev["threshold"])
    return artifacts.put_torch(scorer, "scorer")


def final_metrics(scorer_uri: str) -> dict:
    """The registered model's own metrics on windows it never trained on (``refit_final``); {} if none."""
    return dict(getattr(artifacts.get_torch(scorer_uri), "evaluation", None) or {})


# the input example is one window: reading a 10M-row table for it took gigabytes
EXAMPLE_ROWS = 100_000


@task(name="register", **IO_RETRY)
@releases_memory
def register_model(scorer_uri: str, run_id: str, config: PipelineConfig, loaded: dict, agg: dict) -> dict:
    """Log the scorer with signature and input example, register it, alias it 'challenger'.

    When the latest version was trained on the same data, config and code, nothing new is registered: the run
    is tagged ``registry.unchanged_since`` and the result names that version (``unchanged``: True).
    """
    scorer = artifacts.get_torch(scorer_uri)
    own = dict(getattr(scorer, "evaluation", None) or {})  # the final model on windows it never trained on
    name = config.resolved_model_name() if config.register.enabled else None
    identity = provenance.model_identity(config, loaded["fingerprint"]["hash"])
    same = registry.unchanged_since(tracking.client(), name, identity) if name else None
    if same is not None and same.run_id != run_id:  # a resumed run that registered it before a crash goes on
        tracking.set_tags(run_id, {"registry.unchanged_since": str(same.version)})
        get_run_logger().info("%s unchanged since version %s (same data, config and code): nothing registered",
                              name, same.version)
        return {"name": name, "version": int(same.version), "model_uri": same.source, "alias": None,
                "unchanged": True, "final": own}
    example = report.input_example(scorer, artifacts.get_table_head(loaded["table_uri"], EXAMPLE_ROWS))
    if len(example) == 0:  # no whole window in the first rows (a long gap, say): look through all of them
        example = report.input_example(scorer, artifacts.get_table(loaded["table_uri"]))
    rival = agg["best_baseline"]
    numbers = {k: v for k, v in own.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    tracking.log_metrics(run_id, {report.metric_key("lstm", f"final/{k}"): v for k, v in numbers.items()})
    tags = {"data.hash": loaded["fingerprint"]["hash"], "run_id": run_id, registry.IDENTITY: identity,
            **{f"final_{k}": repr(float(numbers.get(k, float("nan")))) for k in ("pr_auc", "mcc", "f1")},
            **{k: v for k, v in tracking.prefect_link().items() if k.startswith("prefect.")},
            "lstm_pr_auc_mean": repr(agg["models"]["lstm"].get("pr_auc_mean", float("nan"))),
            "best_baseline": rival or "",
            "best_baseline_pr_auc_mean": repr(agg["models"][rival]["pr_auc_mean"]) if rival else "nan"}
    out = tracking.log_and_register(run_id, scorer, example, name, tags, config.model_dump(mode="json"))
    get_run_logger().info("logged %s%s", out["model_uri"],
                          f"; registered {name} version {out['version']} as '{out['alias']}'" if name else "")
    return {**out, "final": own}


@task(name="gate", **IO_RETRY)
@releases_memory
def gate_model(registered: dict, config: PipelineConfig) -> dict:
    """Promote the challenger to 'champion' only if it passes the gate; the reasons become version tags."""
    if not registered.get("version") or registered.get("unchanged") or not config.register.gate:
        return {**registered, "gate": None}
    decision = registry.apply_gate(tracking.client(), registered["name"], registered["version"],
                                   config.register.gate_margin, config.register.gate_metric)
    get_run_logger().info("gate %s version %s: %s", "promoted" if decision.promote else "refused",
                          registered["version"], " | ".join(decision.reasons))
    return {**registered, "gate": {"promoted": decision.promote, "reasons": decision.reasons}}


@task(name="summarise", **IO_RETRY)
@releases_memory
def summarise(run_id: str, config: PipelineConfig, loaded: dict, windows: dict, split: dict, folds: list[dict],
              agg: dict, registered: dict) -> dict:
    """The summary JSON (also an MLflow artifact) and a Prefect markdown summary."""
    summary = report.summary(run_id, config, loaded, windows, split, folds, agg, registered)
    summary["mlflow"]["run_url"] = tracking.run_url(run_id)
    summary["prefect"] = naming.current_flow_run()
    if registered.get("version"):
        registered["url"] = naming.mlflow_version_url(registered["name"], registered["version"])
    tracking.log_json(run_id, summary, "summary.json")
    create_markdown_artifact(report.markdown_summary(summary), key="training-summary",
                             description="Walk-forward result and registered model")
    return summary


@task(name="finish-run", **IO_RETRY)
@releases_memory
def finish_run(run_id: str, status: str) -> None:
    """Close the parent run as FINISHED or FAILED."""
    tracking.finish_run(run_id, status)
