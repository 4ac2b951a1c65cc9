"""Per-fold stages: scale, resample, train, evaluate the LSTM, evaluate the baselines."""
from __future__ import annotations

import statistics

from prefect import get_run_logger, task

from lstm_core.baselines import make_baseline
from lstm_core.config import PipelineConfig
from lstm_core.ensemble import BalancedBaggingLSTM, fit_members
from lstm_core.evaluate import evaluate_fold
from lstm_core.resample import resample
from lstm_core.splits import fold_windows
from lstm_core.train import LSTMWindowModel, TrainResult, fit_lstm
from lstm_pipeline import artifacts, progress, report, workspace
from tasks.policy import COMPUTE_RETRY


@task(name="prepare-fold", task_run_name="prepare-fold-{k}", **COMPUTE_RETRY)
def prepare_fold(windows: dict, split: dict, k: int, config: PipelineConfig) -> str:
    """Fit the scaler on fold k's training rows only and store its three window sets."""
    series, index = artifacts.get_series(windows["series_uri"])
    fw = fold_windows(series, index, artifacts.get_fold(split["folds_uri"], k), config.window.length)
    return artifacts.put_windowsets({"train": fw.train, "val": fw.val, "test": fw.test}, "fold",
                                    mean=fw.mean, scale=fw.scale)


@task(name="resample", task_run_name="resample-fold-{k}", **COMPUTE_RETRY)
def resample_fold(fold_uri: str, k: int, config: PipelineConfig) -> dict:
    """Apply the imbalance strategy to fold k's training windows, never to validation or test."""
    sets, _ = artifacts.get_windowsets(fold_uri)
    out = resample(sets["train"], config.resample, config.train.seed)
    get_run_logger().info("fold %d: %s", k, report.resample_sentence(out.info))
    return {"train_uri": artifacts.put_windowsets({"train": out.windows}, "train"),
            "pos_weight": out.pos_weight, "info": out.info}


@task(name="train", task_run_name="train-fold-{k}", **COMPUTE_RETRY)
def train_fold(resampled: dict, fold_uri: str, k: int, config: PipelineConfig) -> dict:
    """Train the LSTM (or the balanced-bagging LSTMs) on fold k with early stopping on its validation slice."""
    train = artifacts.get_windowsets(resampled["train_uri"])[0]["train"]
    val = artifacts.get_windowsets(fold_uri)[0]["val"]
    on_epoch = lambda row: progress.report("epoch", fold=k, **row)  # noqa: E731
    if resampled["info"]["strategy"] == "balanced_bagging":
        results = fit_members(train, val, config.model, config.train, config.resample, on_epoch=on_epoch)
    else:
        results = [fit_lstm(train, val, config.model, config.train, resampled["pos_weight"], on_epoch=on_epoch)]
    for i, r in enumerate(results, 1):
        get_run_logger().info("fold %d%s: best epoch %d of %d, validation PR-AUC %.4f, %.1f s on %s", k,
                              f" member {i}" if len(results) > 1 else "", r.best_epoch, len(r.history),
                              r.best_val_pr_auc, r.seconds, r.device)
    return {"model_uri": artifacts.put_torch([r.__dict__ for r in results], "lstm"),
            "history": results[0].history, "members": len(results),
            "best_epoch": int(statistics.median_low(r.best_epoch for r in results)),
            "seconds": sum(r.seconds for r in results), "device": results[0].device}


def fold_model(trained: dict, config: PipelineConfig) -> LSTMWindowModel | BalancedBaggingLSTM:
    """The fitted LSTM (or ensemble) a train task stored."""
    results = [TrainResult(**r) for r in artifacts.get_torch(trained["model_uri"])]
    if len(results) > 1:
        ensemble = BalancedBaggingLSTM(config.model, config.train, config.resample)
        ensemble.results = results
        return ensemble
    model = LSTMWindowModel(config.model, config.train)
    model.result = results[0]
    return model


@task(name="evaluate", task_run_name="evaluate-fold-{k}", **COMPUTE_RETRY)
def evaluate_lstm(trained: dict, fold_uri: str, k: int, config: PipelineConfig) -> dict:
    """Threshold on validation, metrics on test, for the trained LSTM."""
    sets, _ = artifacts.get_windowsets(fold_uri)
    score = evaluate_fold(fold_model(trained, config), sets["train"], sets["val"], sets["test"],
                          config.evaluate.threshold_metric, fit=False)
    get_run_logger().info("fold %d: LSTM test PR-AUC %.4f, MCC %.4f at threshold %.3f", k,
                          score.metrics["pr_auc"], score.metrics["mcc"], score.threshold)
    return {"threshold": score.threshold, "metrics": score.metrics,
            "scores_uri": workspace.put_arrays({"y": sets["test"].y, "lstm": score.test_scores}, "scores")}


@task(name="baselines", task_run_name="baselines-fold-{k}", **COMPUTE_RETRY)
def evaluate_baselines(fold_uri: str, k: int, config: PipelineConfig) -> dict:
    """Every baseline, fitted on fold k's (unresampled) training windows and scored on its test windows."""
    sets, _ = artifacts.get_windowsets(fold_uri)
    out, scores = {}, {"y": sets["test"].y}
    for name in config.evaluate.baselines:
        s = evaluate_fold(make_baseline(name, config.train.seed), sets["train"], sets["val"], sets["test"],
                          config.evaluate.threshold_metric)
        out[name], scores[name] = {"threshold": s.threshold, "metrics": s.metrics}, s.test_scores
    get_run_logger().info("fold %d: baseline test PR-AUC %s", k,
                          ", ".join(f"{n} {o['metrics']['pr_auc']:.4f}" for n, o in out.items()))
    return {"models": out, "scores_uri": workspace.put_arrays(scores, "scores")}
