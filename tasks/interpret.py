"""Interpretability of the model the user gets: the final refit's gates, hidden units and attention on the folds'
validation and test windows, and each fold's confusion matrix, logged under plots/interpret/."""
from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from prefect import task
from prefect.artifacts import create_image_artifact, create_markdown_artifact

from lstm_core.config import PipelineConfig
from lstm_core.interpret import interpret, sample_windows
from lstm_core.windows import window_set
from lstm_pipeline import artifacts, plots, report, settings, tracking, workspace
from lstm_pipeline.execution import releases_memory
from tasks.policy import IO_RETRY

FOLDER = "plots/interpret"
TRACED_WINDOWS = 1000  # half positive where possible; a trace holds windows × steps × units floats per layer
SAMPLE_WINDOWS = 8  # rows of the attention plot


def traced_windows(scorer, windows: dict, split: dict, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scaled windows (n, L, F) and targets from every fold's validation and test parts, as the scorer scales."""
    series, index = artifacts.get_series(windows["series_uri"])
    parts = [getattr(artifacts.get_fold(split["folds_uri"], s["fold"]), p) for s in split["folds"] for p in ("val", "test")]
    positions = np.unique(np.concatenate(parts))
    positions = positions[sample_windows(index.y[positions], TRACED_WINDOWS, seed)]
    x = window_set(series.features, index, scorer.spec["window"], positions).gather()  # (n, L, F) raw
    return (x - scorer.mean.numpy()) / scorer.scale.numpy(), index.y[positions]


def fold_predictions(folds: list[dict]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(k, test targets, 0/1 at the fold's validation threshold) per fold."""
    out = []
    for f in folds:
        scores = workspace.get_arrays(f["lstm"]["scores_uri"])
        out.append((f["k"], scores["y"], (scores["lstm"] >= f["lstm"]["threshold"]).astype(np.int8)))
    return out


def _image_url(run_id: str, path: str) -> str | None:
    """A browser URL for a run's artifact on an MLflow server; None for the embedded store (no server)."""
    uri = settings.tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return None
    return f"{uri.rstrip('/')}/get-artifact?{urlencode({'path': path, 'run_uuid': run_id})}"


@task(name="interpret", **IO_RETRY)
@releases_memory
def interpret_final(scorer_uri: str, windows: dict, split: dict, folds: list[dict], run_id: str,
                    config: PipelineConfig) -> list[str]:
    """Trace the final model on the folds' validation/test windows; log its plots and the per-fold confusion."""
    scorer = artifacts.get_torch(scorer_uri)
    net = scorer.network if hasattr(scorer, "network") else scorer.networks[0]  # bagging: its first member
    x, y = traced_windows(scorer, windows, split, config.train.seed)
    out = interpret(net, x, y, SAMPLE_WINDOWS, seed=config.train.seed)
    with tempfile.TemporaryDirectory() as tmp:
        drawn = [plots.gate_by_step(out.gate_by_step, out.gate_name, Path(tmp) / f"{out.gate_name}_gate.png"),
                 plots.unit_activity(out.activity, out.dead, Path(tmp) / "hidden_activity.png"),
                 plots.confusion_matrices(fold_predictions(folds), Path(tmp) / "confusion_matrices.png")]
        if out.attention is not None:
            drawn.append(plots.attention(out.attention, out.attention_y, Path(tmp) / "attention.png"))
        for path in drawn:
            tracking.log_file(run_id, path, FOLDER)
    dead = {report.metric_key("lstm", f"interpret/dead_units_{k.replace(' ', '_')}"): v for k, v in out.dead.items()}
    tracking.log_metrics(run_id, dead)
    logged = [f"{FOLDER}/{p.name}" for p in drawn]
    _publish(run_id, logged, out, len(y), int(y.sum()), members=len(getattr(scorer, "networks", [net])))
    return logged


def _dead_sentence(dead: dict[str, int]) -> str:
    """'No hidden unit of layer 1 stayed silent on these windows.' or 'Hidden units that stayed silent on every
    one of these windows (dead): 3 in layer 1, none in layer 2.'"""
    if not any(dead.values()):
        return f"No hidden unit of {' or '.join(dead) or 'the network'} stayed silent on these windows."
    counts = ", ".join(f"{v or 'none'} in {k}" for k, v in dead.items())
    return f"Hidden units that stayed silent on every one of these windows (dead): {counts}."


def _publish(run_id: str, logged: list[str], out, n: int, positives: int, members: int) -> None:
    """A Prefect markdown summary linking the plots; on an MLflow server the key plots also as image artifacts."""
    lines = [f"Final model traced on {n} validation/test windows of the folds ({positives} positive); it was "
             "refitted on all data, so these windows are in its training set."
             + (f" Balanced bagging: member 1 of {members}." if members > 1 else ""),
             "", _dead_sentence(out.dead), "",
             f"| plot | MLflow artifact of run `{run_id}` |", "|---|---|"]
    for path in logged:
        url = _image_url(run_id, path)
        lines.append(f"| {Path(path).stem} | {f'![{path}]({url})' if url else f'`{path}`'} |")
        if url and Path(path).stem in ("forget_gate", "update_gate", "attention"):
            create_image_artifact(url, key=f"interpret-{Path(path).stem.replace('_', '-')}",
                                  description=f"{path} of the final model")
    create_markdown_artifact("\n".join(lines), key="interpretability",
                             description="Gates, hidden units and attention of the final model; confusion per fold")
