"""Wiring both flows share: the data prologue and the per-fold stages submitted to the task runner.

Fold stages are submitted, not called, so a Dask runner trains folds in parallel; the local runner has one
worker thread and runs them one after another in submission order, as a plain loop would.
"""
from __future__ import annotations

from typing import Any

from prefect.futures import PrefectFuture

from lstm_core.config import PipelineConfig
from tasks.data import split_folds, validate_data, window_data
from tasks.folds import evaluate_baselines, evaluate_lstm, prepare_fold, resample_fold, train_fold


def prologue(loaded: dict, run_id: str, config: PipelineConfig) -> tuple[dict, dict, dict]:
    """Validate, window and split; returns ``loaded`` less any constant feature the contract dropped."""
    loaded = validate_data(loaded, run_id, config)
    windows = window_data(loaded, config, run_id)
    return loaded, windows, split_folds(windows, config)


def submit_prepare(windows: dict, split: dict, config: PipelineConfig) -> dict[int, PrefectFuture]:
    """Each fold's scaled window sets, by fold number."""
    return {s["fold"]: prepare_fold.submit(windows, split, s["fold"], config) for s in split["folds"]}


def submit_lstm(fold_uri: PrefectFuture, k: int, config: PipelineConfig, label: str = "") -> dict[str, PrefectFuture]:
    """Resample, train and evaluate fold k; ``label`` tells strategies apart in task run names."""
    name = f"{label}-fold-{k}" if label else f"fold-{k}"
    resampled = resample_fold.with_options(task_run_name=f"resample-{name}").submit(fold_uri, k, config)
    trained = train_fold.with_options(task_run_name=f"train-{name}").submit(resampled, fold_uri, k, config)
    lstm = evaluate_lstm.with_options(task_run_name=f"evaluate-{name}").submit(trained, fold_uri, k, config)
    return {"resampled": resampled, "trained": trained, "lstm": lstm}


def submit_baselines(fold_uri: PrefectFuture, k: int, config: PipelineConfig) -> PrefectFuture:
    return evaluate_baselines.submit(fold_uri, k, config)


def results(futures: dict[str, Any]) -> dict[str, Any]:
    """The values of a dict of futures; the first failed stage raises its own exception."""
    return {name: f.result() if isinstance(f, PrefectFuture) else f for name, f in futures.items()}
