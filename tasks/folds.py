"""Per-fold stages: scale, resample, train, evaluate the LSTM, evaluate the baselines."""
from __future__ import annotations

import hashlib
import json
import statistics
import time

import torch
from prefect import get_run_logger, task
from prefect.runtime import task_run

from lstm_core.baselines import SummaryCache, make_baseline
from lstm_core.config import PipelineConfig
from lstm_core.ensemble import FoldModel, fit_model, model_from
from lstm_core.episodes import RowLabels
from lstm_core.evaluate import evaluate_fold
from lstm_core.resample import resample
from lstm_core.splits import fold_windows
from lstm_core.train import TrainResult
from lstm_pipeline import artifacts, execution, progress, report, workspace
from lstm_pipeline.execution import releases_memory
from tasks.policy import COMPUTE_RETRY, TRAIN_RETRY, cached

TRAINS_ON = ("model", "train", "resample", "window", "split")


def set_torch_threads(config: PipelineConfig) -> None:
    """The same thread count on every executor: a Dask worker would otherwise use one and sum in another order."""
    torch.set_num_threads(execution.torch_threads(config.execution.torch_threads))


def _checkpoints(resampled: dict, fold_uri: str, k: int, config: PipelineConfig, batch_size: int):
    """This fold's checkpoint file per member, named by its training data, validation slice and config."""
    tree = {s: config.model_dump(mode="json")[s] for s in TRAINS_ON}
    key = hashlib.sha256(json.dumps([resampled["train_uri"], resampled["pos_weight"], fold_uri, tree, batch_size],
                                    sort_keys=True, default=str).encode()).hexdigest()[:24]
    return lambda member: workspace.FileCheckpointer(workspace.checkpoint_dir() / f"fold-{k}-{key}-m{member}.pt")


@task(name="prepare-fold", task_run_name="prepare-fold-{k}", **COMPUTE_RETRY, **cached("window"))
@releases_memory
def prepare_fold(windows: dict, split: dict, k: int, config: PipelineConfig) -> str:
    """Fit the scaler on fold k's training rows only and store its window sets (train, val, calib, test).

    The window length is the one the window stage cut (``window: auto`` resolved there), never re-read from
    the config."""
    series, index = artifacts.get_series(windows["series_uri"])
    # the rows were read for this task alone: scaled where they lie, not into a second array
    fw = fold_windows(series, index, artifacts.get_fold(split["folds_uri"], k), windows["length"], in_place=True)
    rows = RowLabels.from_series(series).to_arrays()  # the row-level target the episode metrics read
    return artifacts.put_windowsets(fw.sets(), "fold", mean=fw.mean, scale=fw.scale, **rows)


@task(name="resample", task_run_name="resample-fold-{k}", **COMPUTE_RETRY, **cached("resample", "train"))
@releases_memory
def resample_fold(fold_uri: str, k: int, config: PipelineConfig) -> dict:
    """Apply the imbalance strategy to fold k's training windows, never to validation or test."""
    sets, _ = artifacts.get_windowsets(fold_uri)
    out = resample(sets["train"], config.resample, config.train.seed)
    get_run_logger().info("fold %d: %s", k, report.resample_sentence(out.info))
    # a strategy that only re-draws windows keeps the fold's rows: store the windows, point at the rows
    same_rows = out.windows.rows is sets["train"].rows
    return {"train_uri": artifacts.put_windowsets({"train": out.windows}, "train",
                                                  rows_from=fold_uri if same_rows else None),
            "pos_weight": out.pos_weight, "info": out.info}


@task(name="train", task_run_name="train-fold-{k}", **TRAIN_RETRY, **cached(*TRAINS_ON))
@releases_memory
def train_fold(resampled: dict, fold_uri: str, k: int, config: PipelineConfig) -> dict:
    """Train the LSTM (or the balanced-bagging LSTMs) on fold k with early stopping on its validation slice.

    The result carries the best evaluation (``best_epoch``), its optimiser step (``best_step``) and the step
    budget the schedule spanned (``schedule_steps``): the final refit trains for the folds' median of both.
    Every evaluation is checkpointed, so a killed run resumes the fold where it stopped. After a CUDA out-of-memory
    error the task is retried with half the batch (attempt n uses batch_size // 2**(n-1), at least 1).
    """
    progress.report("fold", fold=k, folds=config.split.folds, strategy=config.resample.strategy)
    set_torch_threads(config)
    logger = get_run_logger()
    attempt = task_run.run_count or 1
    batch = max(1, config.train.batch_size // 2 ** (attempt - 1))
    if batch != config.train.batch_size:
        logger.warning("fold %d: attempt %d after CUDA ran out of memory: batch size %d -> %d", k, attempt,
                       config.train.batch_size, batch)
    train_cfg = config.train.model_copy(update={"batch_size": batch})
    val = artifacts.get_windowsets(fold_uri)[0]["val"]
    train = artifacts.get_windowsets(resampled["train_uri"], held={fold_uri: val.rows})[0]["train"]
    on_epoch = lambda row: progress.report("epoch", fold=k, **row)  # noqa: E731
    checkpoint_for = _checkpoints(resampled, fold_uri, k, config, batch)
    results = fit_model(train, val, config.model, train_cfg, config.resample, resampled["pos_weight"],
                        on_epoch=on_epoch, checkpoint_for=checkpoint_for).results
    for i, r in enumerate(results, 1):
        logger.info("fold %d%s: best at step %d (evaluation %d of %d, budget %d steps), validation PR-AUC %.4f, "
                    "%.1f s on %s", k, f" member {i}" if len(results) > 1 else "", r.best_step, r.best_epoch,
                    len(r.history), r.schedule_steps, r.best_val_pr_auc, r.seconds, r.device)
    out = {"model_uri": artifacts.put_torch([r.__dict__ for r in results], "lstm"),
           "history": results[0].history, "members": len(results), "batch_size": batch,
           "best_epoch": int(statistics.median_low(r.best_epoch for r in results)),
           "best_step": int(statistics.median_low(r.best_step for r in results)),
           "schedule_steps": int(results[0].schedule_steps),
           "seconds": sum(r.seconds for r in results), "finished_at": time.time(), "device": results[0].device}
    for i in range(1, len(results) + 1):  # the stored model (and the cached task result) take over from here
        checkpoint_for(i).clear()
    return out


def fold_model(trained: dict, config: PipelineConfig) -> FoldModel:
    """The fitted LSTM (or the averaged networks of an ensemble) a train task stored."""
    results = [TrainResult(**r) for r in artifacts.get_torch(trained["model_uri"])]
    return model_from(results, config.model, config.train, config.resample)


@task(name="evaluate", task_run_name="evaluate-fold-{k}", **COMPUTE_RETRY,
      **cached("model", "train", "resample", "evaluate"))
@releases_memory
def evaluate_lstm(trained: dict, fold_uri: str, k: int, config: PipelineConfig) -> dict:
    """Threshold on the calibration slice (validation without one), metrics on test, for the trained LSTM."""
    set_torch_threads(config)
    sets, extra = artifacts.get_windowsets(fold_uri)
    score = evaluate_fold(fold_model(trained, config), sets["train"], sets["val"], sets["test"],
                          config.evaluate.threshold_metric, fit=False, calib=sets.get("calib"),
                          labels=RowLabels.from_arrays(extra), zone_rows=config.evaluate.episode_zone_rows)
    get_run_logger().info("fold %d: LSTM test PR-AUC %.4f, MCC %.4f at threshold %.3f%s", k,
                          score.metrics["pr_auc"], score.metrics["mcc"], score.threshold,
                          report.episode_sentence(score.episode))
    return {"threshold": score.threshold, "metrics": score.metrics, "episode": score.episode,
            "scores_uri": workspace.put_arrays({"y": sets["test"].y, "ends": sets["test"].ends,
                                                "lstm": score.test_scores}, "scores")}


@task(name="baselines", task_run_name="baselines-fold-{k}", **COMPUTE_RETRY, **cached("evaluate", "train"))
@releases_memory
def evaluate_baselines(fold_uri: str, k: int, config: PipelineConfig) -> dict:
    """Every baseline, fitted on fold k's (unresampled) training windows and scored on its test windows.

    The learned ones share one summary-feature cache: each window set's features are computed once, and both
    fit on the same stratified sample of at most ``evaluate.baseline_max_windows`` training windows. The fold's
    rows are mapped, not read: the baselines only read windows, and the rows no window of theirs covers (a
    later fold's) never enter memory."""
    sets, extra = artifacts.get_windowsets(fold_uri, mmap=True)
    labels = RowLabels.from_arrays(extra)
    out, scores = {}, {"y": sets["test"].y, "ends": sets["test"].ends}
    cache = SummaryCache()
    for name in config.evaluate.baselines:
        model = make_baseline(name, config.train.seed, config.evaluate.baseline_max_windows, cache=cache)
        s = evaluate_fold(model, sets["train"], sets["val"], sets["test"], config.evaluate.threshold_metric,
                          calib=sets.get("calib"), labels=labels, zone_rows=config.evaluate.episode_zone_rows)
        out[name], scores[name] = {"threshold": s.threshold, "metrics": s.metrics, "episode": s.episode}, s.test_scores
    get_run_logger().info("fold %d: baseline test PR-AUC %s", k,
                          ", ".join(f"{n} {o['metrics']['pr_auc']:.4f}" for n, o in out.items()))
    return {"models": out, "scores_uri": workspace.put_arrays(scores, "scores")}
