"""The demos: the whole pipeline on bundled real data.

``cmapss`` (default) trains on NASA C-MAPSS FD001 and then runs the published test protocol; ``beijing`` is the
calendar-time example: hourly Beijing PM2.5, event = PM2.5 ≥ 300 within the next 6 hours, split by time.

The published protocol (Azure 'Deep Learning Basics for Predictive Maintenance' and its MIT-licensed port):
window 50, label "fails within 30 cycles", score the LAST window of each of the 93 test engines that have at
least 50 cycles. Their Keras LSTM reached accuracy 0.978, precision 0.96, recall 0.96, F1 0.96.
"""
from __future__ import annotations

import hashlib
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from lstm_core.baselines import make_baseline
from lstm_core.config import PipelineConfig, load_config
from lstm_core.data import resolve_spec, to_series
from lstm_core.datasets import (
    FAILURE_WITHIN,
    SENSOR_COLUMNS,
    last_window_test_protocol,
    load_beijing_pm25,
    load_cmapss_fd001,
)
from lstm_core.metrics import score_metrics
from lstm_core.splits import fit_scaler, scale_rows
from lstm_core.windows import last_per_entity, make_windows, window_set
from lstm_pipeline.safe_files import atomic_write, sha256_file

WINDOW = 50
PUBLISHED = {"accuracy": 0.978, "precision": 0.96, "recall": 0.96, "f1": 0.96, "mcc": 0.945, "pr_auc": None}


DATASETS = ("cmapss", "beijing")


def _bundled_csv(home: Path, name: str, load) -> Path:
    """Write a bundled table once under the home folder, so the flow reads a file like any user's.

    The file is written atomically with its sha256 beside it (``NAME.sha256``); it is reused only when its bytes
    still match, so a truncated or edited copy (or one from before the checksum existed) is written again.
    """
    path = home / "datasets" / name
    digest = path.with_name(f"{name}.sha256")
    if path.is_file() and digest.is_file() and digest.read_text(encoding="utf-8").strip() == sha256_file(path):
        return path
    data = load().to_csv(index=False).encode("utf-8")
    atomic_write(path, data)
    atomic_write(digest, hashlib.sha256(data).hexdigest() + "\n")
    return path


def demo_config(home: Path, epochs: int | None = None, dataset: str = "cmapss") -> PipelineConfig:
    """The demo's config: C-MAPSS run-to-failure engines by entity, or Beijing PM2.5 by time.

    The model and the training loop are ``train``'s defaults. The one thing the demo may shorten is
    ``train.epochs`` (``epochs``, when given): it sets the step budget only where epochs × steps per epoch
    exceeds ``train.min_steps``. On C-MAPSS that never happens below 30 epochs (at most 48 steps per epoch
    at batch 256), so every fold and the final model train exactly as ``train`` would; on Beijing the
    largest fold has 96 steps per epoch, so the CLI's 8 epochs leave its budget at the 1,500-step floor
    instead of the 1,920 steps of 20 epochs.
    """
    train = {} if epochs is None else {"train.epochs": epochs}
    if dataset == "beijing":
        path = _bundled_csv(home, "beijing_pm25.csv", load_beijing_pm25)
        return load_config(None, {
            "data.path": str(path), "data.time_col": "time", "data.event_col": "event", "data.horizon": 6,
            "window.length": 24, "window.max_gap": "1h", "split.by": "time", "split.folds": 3,
            "register.model_name": "beijing-pm25-lstm", "register.experiment": "beijing-pm25-demo", **train,
        })
    path = _bundled_csv(home, "cmapss_fd001_train.csv", lambda: load_cmapss_fd001().train)
    return load_config(None, {
        "data.path": str(path), "data.time_col": "cycle", "data.entity_col": "engine", "data.label_col": "label",
        "data.label_lookahead": FAILURE_WITHIN, "data.features": list(SENSOR_COLUMNS),  # never 'rul': the answer
        "window.length": WINDOW, "split.by": "entity", "split.folds": 3, "register.model_name": "cmapss-fd001-lstm",
        "register.experiment": "cmapss-fd001-demo", **train,
    })


def _protocol_windows(cfg: PipelineConfig, features: list[str]):
    """Training series/windows and the last window of each of the 93 long-enough test engines, over ``features``
    (those the registered model was trained on: the contract drops C-MAPSS's constant sensors)."""
    data = load_cmapss_fd001()
    spec = replace(resolve_spec(data.train, cfg.data), features=tuple(features))
    train_s = to_series(data.train, spec)
    test_s = to_series(last_window_test_protocol(data.test, WINDOW), spec)
    train_idx, test_idx = make_windows(train_s, WINDOW), make_windows(test_s, WINDOW)
    return train_s, train_idx, test_s, test_idx, last_per_entity(test_s, test_idx)


def published_protocol(summary: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Score the registered LSTM and each baseline on the 93 last test windows (``print_published`` shows them
    beside the paper)."""
    from lstm_app.runner import load_scorer

    cfg = PipelineConfig.model_validate(summary["config"])
    reg = summary["registered_model"]
    scorer = load_scorer(f"models:/{reg['name']}/{reg['version']}" if reg.get("version") else reg["model_uri"])
    train_s, train_idx, test_s, test_idx, last = _protocol_windows(cfg, scorer.spec["features"])
    import torch

    raw = window_set(test_s.features, test_idx, WINDOW, last)
    with torch.inference_mode():
        lstm = scorer(torch.as_tensor(raw.gather())).numpy().astype(np.float64)
    results = {"lstm": score_metrics(raw.y, lstm, scorer.threshold)}
    mean, scale = fit_scaler(train_s.features, train_idx.ends, WINDOW)
    train_ws = window_set(scale_rows(train_s.features, mean, scale), train_idx, WINDOW)
    test_ws = window_set(scale_rows(test_s.features, mean, scale), test_idx, WINDOW, last)
    for name in cfg.evaluate.baselines:
        threshold = statistics.median(f["metrics"][name]["threshold"] for f in summary["folds"])
        model = make_baseline(name, cfg.train.seed).fit(train_ws)
        results[name] = score_metrics(test_ws.y, model.predict_proba(test_ws), threshold)
    return results


def print_published(results: dict[str, dict[str, float]], console: Console) -> None:
    n = int(next(iter(results.values()))["n"])
    table = Table(title=f"Published protocol: last window of the {n} test engines with ≥ {WINDOW} cycles")
    cols = ("accuracy", "precision", "recall", "f1", "mcc", "pr_auc")
    table.add_column("model")
    for c in cols:
        table.add_column(c)
    table.add_row("published Keras LSTM", *(f"{PUBLISHED[c]:.3f}" if PUBLISHED[c] else "-" for c in cols),
                  style="dim")
    for name, m in results.items():
        table.add_row(name, *(f"{m[c]:.3f}" for c in cols), style="bold" if name == "lstm" else None)
    console.print(table)
