"""Comparison stages: a parent MLflow run, one child run per imbalance strategy, and the comparison table."""
from __future__ import annotations

import json
import statistics
import tempfile
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact

from lstm_core.config import PipelineConfig, flatten
from lstm_core.evaluate import FoldScore, best_baseline, summarise_episodes, summarise_models
from lstm_pipeline import plots, report, settings, tracking, workspace
from lstm_pipeline.execution import releases_memory
from tasks.policy import IO_RETRY


@task(name="start-comparison", **IO_RETRY)
@releases_memory
def start_comparison(config: PipelineConfig, loaded: dict, strategies: list[str]) -> str:
    """Open the parent run: the shared config (without a strategy), the strategies and the data fingerprint."""
    fp = loaded["fingerprint"]
    params = {k: v for k, v in config.flat().items() if k != "resample.strategy"}
    params.update({f"data.fingerprint.{k}": v for k, v in fp.items()})
    params.update({"data.features_resolved": ",".join(loaded["features"]), "compare.strategies": ",".join(strategies)})
    return tracking.start_run(config.register.experiment, report.compare_run_name(config), params,
                              {"pipeline": "compare_resampling", "data.hash": fp["hash"]})


@task(name="start-strategy", task_run_name="start-{strategy}", **IO_RETRY)
@releases_memory
def start_strategy(run_id: str, config: PipelineConfig, strategy: str) -> str:
    """A child run for one strategy, holding its resample settings."""
    params = flatten(config.resample.model_dump(mode="json"), "resample.")
    return tracking.start_run(config.register.experiment, strategy, {**params, "resample.ratio": config.resample.ratio()},
                              {"strategy": strategy}, parent_run_id=run_id)


@task(name="log-strategy", task_run_name="log-{strategy}", **IO_RETRY)
@releases_memory
def log_strategy(child_id: str, strategy: str, runs: list[dict]) -> dict:
    """Per-fold test metrics (step = fold) and their mean ± std and pooled values on the strategy's run."""
    per_fold, ys, params = [], [], {}
    for r in runs:
        scores = workspace.get_arrays(r["lstm"]["scores_uri"])
        ys.append(scores["y"])
        per_fold.append({"lstm": FoldScore("lstm", r["lstm"]["threshold"], r["lstm"]["metrics"], scores["lstm"],
                                           r["lstm"].get("episode") or {})})
        tracking.log_metrics(child_id, {**report.model_metrics({"lstm": r["lstm"]["metrics"]}),
                                        "train/best_epoch": r["trained"]["best_epoch"],
                                        "train/seconds": r["trained"]["seconds"]}, step=r["k"])
        params.update({f"fold{r['k']}.{k}": v for k, v in r["resampled"]["info"].items()})
    summary = summarise_models(ys, per_fold)["lstm"]
    episodes = summarise_episodes(per_fold).get("lstm", {})
    seconds = sum(r["trained"]["seconds"] for r in runs)
    added = statistics.fmean(r["resampled"]["info"].get("synthetic", 0) for r in runs)
    tracking.log_params(child_id, params)
    tracking.log_metrics(child_id, {**report.model_metrics({"lstm": summary}), "train/seconds_total": seconds})
    tracking.log_metrics(child_id, report.episode_metric_keys({"lstm": episodes}))
    tracking.finish_run(child_id)
    get_run_logger().info("%s: test PR-AUC %.4f ± %.4f, MCC %.4f ± %.4f", strategy, summary["pr_auc_mean"],
                          summary["pr_auc_std"], summary["mcc_mean"], summary["mcc_std"])
    return {"status": "ok", "metrics": summary, "episodes": episodes, "seconds": seconds, "added": added, "run_id": child_id,
            "folds": [{"k": r["k"], "metrics": r["lstm"]["metrics"], "threshold": r["lstm"]["threshold"],
                       "resample": r["resampled"]["info"]} for r in runs]}


@task(name="fail-strategy", task_run_name="fail-{strategy}", **IO_RETRY)
@releases_memory
def fail_strategy(child_id: str, strategy: str, error: str) -> dict:
    """A strategy that cannot run on these folds: its run is FAILED, with the reason; the others go on."""
    tracking.set_tags(child_id, {"error": error[:5000]})
    tracking.finish_run(child_id, "FAILED")
    get_run_logger().warning("%s did not run: %s", strategy, error)
    return {"status": "failed", "error": error, "run_id": child_id}


def _baselines(folds: list[dict]) -> dict[str, dict]:
    per_fold, ys = [], []
    for f in folds:
        scores = workspace.get_arrays(f["baselines"]["scores_uri"])
        ys.append(scores["y"])
        per_fold.append({n: FoldScore(n, o["threshold"], o["metrics"], scores[n], o.get("episode") or {})
                         for n, o in f["baselines"]["models"].items()})
    episodes = summarise_episodes(per_fold)
    return {n: {**v, **{f"episode/{k}": e for k, e in episodes.get(n, {}).items()}}
            for n, v in summarise_models(ys, per_fold).items()}


@task(name="compare", **IO_RETRY)
@releases_memory
def compare(run_id: str, config: PipelineConfig, folds: list[dict], outcomes: dict[str, dict]) -> dict:
    """The table of strategies next to the best baseline: Prefect table artifact, CSV, JSON and a plot in MLflow."""
    baselines = _baselines(folds)
    best = best_baseline(baselines)
    rows = report.comparison_rows(outcomes, baselines, best)
    verdict = report.comparison_verdict(rows)
    # strategies first (upper-case 'LSTM' sections sort before the baselines' in MLflow's chart view)
    tracking.log_metrics(run_id, {report.metric_key("lstm", f"{s}/{k}"): out["metrics"][k] for s, out in outcomes.items()
                                  if out["status"] == "ok" for k in ("pr_auc_mean", "pr_auc_std", "mcc_mean", "mcc_std")})
    tracking.log_metrics(run_id, report.model_metrics(baselines))
    result = {"verdict": verdict, "rows": rows, "best_baseline": best, "baselines": baselines,
              "strategies": outcomes, "folds": [f["summary"] for f in folds], "window_length": config.window.length,
              "mlflow": {"tracking_uri": settings.tracking_uri(), "run_id": run_id}}
    with tempfile.TemporaryDirectory() as tmp:
        csv, js = Path(tmp) / "resampling_comparison.csv", Path(tmp) / "resampling_comparison.json"
        pd.DataFrame(rows).to_csv(csv, index=False)
        js.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
        tracking.log_file(run_id, csv, "comparison")
        tracking.log_file(run_id, js, "comparison")
        title = f"{report.compare_run_name(config)}: {len(folds)} folds"
        tracking.log_file(run_id, plots.strategy_comparison(rows, Path(tmp) / "resampling_pr_auc.png", title), "plots")
    create_table_artifact(report.comparison_table(rows), key="resampling-comparison", description=verdict)
    get_run_logger().info(verdict)
    return result
