"""The deployable scorer: scaler + network + everything needed to turn raw rows into scores.

It is one ``nn.Module`` so that a registry stores a single object that scores raw (unscaled) windows,
and ``score_frame`` turns a user's table into one score per window end.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from lstm_core.config import DataConfig, ModelConfig, PipelineConfig, SplitConfig
from lstm_core.data import DataError, DataSpec, Series, to_series
from lstm_core.ensemble import fit_model
from lstm_core.metrics import choose_threshold, score_metrics
from lstm_core.model import LSTMClassifier
from lstm_core.resample import resample
from lstm_core.splits import _reach_time, fit_scaler, scale_rows
from lstm_core.train import EpochCallback, predict_proba
from lstm_core.windows import WindowIndex, WindowSet, window_ends, window_set


@dataclass(frozen=True)
class ScoringSpec:
    """What the scorer needs to know about the raw table (stored beside the weights)."""

    time_col: str
    entity_col: str | None
    features: list[str]
    window: int
    max_gap: float | str | None
    threshold: float
    mode: str
    horizon: int

    def to_dict(self) -> dict:
        return asdict(self)


class RareEventScorer(nn.Module):
    """Raw windows (B, L, F) → event probabilities (B,), with the training scaler inside.

    ``network`` is one LSTMClassifier, or a list of them (balanced bagging) whose probabilities are averaged.
    ``evaluation`` holds the model's own metrics on windows it never trained on (see ``fit_final``); empty when
    it was not evaluated.
    """

    def __init__(self, network: nn.Module | Sequence[nn.Module], mean: np.ndarray, scale: np.ndarray,
                 spec: ScoringSpec, evaluation: dict | None = None) -> None:
        super().__init__()
        self.evaluation = dict(evaluation or {})
        if isinstance(network, nn.Module):
            self.network = network
        else:
            self.networks = nn.ModuleList(network)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))  # (F,)
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))  # (F,)
        self.spec = spec.to_dict()  # a plain dict pickles without this module's classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.scale  # (B, L, F)
        members = getattr(self, "networks", None)  # a scorer pickled before ensembles existed has none
        if members is None:
            return torch.sigmoid(self.network(z))  # (B,)
        return torch.stack([torch.sigmoid(net(z)) for net in members]).mean(dim=0)  # (K, B) -> (B,)

    @property
    def threshold(self) -> float:
        return float(self.spec["threshold"])


def rebuild_network(state_dict: dict, n_features: int, model_cfg: ModelConfig) -> LSTMClassifier:
    """An LSTMClassifier with trained weights, in eval mode."""
    net = LSTMClassifier(n_features, model_cfg)
    net.load_state_dict(state_dict)
    return net.eval()


def scoring_series(df: pd.DataFrame, spec: dict) -> Series:
    """Lay out a raw table for scoring: the label or event column is not needed."""
    missing = [c for c in [spec["time_col"], *spec["features"]] + ([spec["entity_col"]] if spec["entity_col"] else [])
               if c not in df.columns]
    if missing:
        raise DataError(f"column(s) {missing} needed by the model are not in the file; it has {list(df.columns)}")
    data_spec = DataSpec(spec["time_col"], spec["entity_col"], tuple(spec["features"]), "__none__", "label", 0)
    frame = df.assign(__none__=0)
    bad = frame[list(spec["features"])].isna().any(axis=1)
    if bad.any():
        lines = (np.flatnonzero(bad)[:10] + 2).tolist()  # file lines: the header is line 1
        raise DataError(f"missing feature values at lines {lines}")
    return to_series(frame, data_spec)


@torch.inference_mode()
def score_frame(scorer: RareEventScorer, df: pd.DataFrame, batch_size: int = 8192) -> pd.DataFrame:
    """One row per window end: entity, time, score (probability) and prediction (score ≥ threshold)."""
    spec = scorer.spec
    series = scoring_series(df, spec)
    ends = window_ends(series, spec["window"], tail=0, max_gap=spec["max_gap"])
    ws = WindowSet(series.features, ends, spec["window"], np.zeros(len(ends), np.int8),
                   np.zeros(len(ends), np.int8), np.zeros(len(ends), bool))
    scorer.eval()
    scores = np.empty(len(ends), dtype=np.float32)  # filled in place: see predict_logits
    for i in range(0, len(ends), batch_size):
        scores[i:i + batch_size] = scorer(torch.as_tensor(ws.gather(slice(i, i + batch_size)))).numpy()
    times = series.time[ends]
    out = pd.DataFrame({
        "entity": [series.entity_names[c] for c in series.entity[ends]] if spec["entity_col"] else None,
        "time": pd.to_datetime(times) if series.time_is_datetime else times,
        "score": scores.astype(np.float64),
    })
    out["prediction"] = (out["score"] >= scorer.threshold).astype(np.int8)
    if not spec["entity_col"]:
        return out.drop(columns="entity")
    # Entities come back with the file's own dtype (machine 3 stays 3), so scores join onto the user's rows.
    out["entity"] = out["entity"].astype(df[spec["entity_col"]].dtype)
    return out


def scoring_spec(data: DataConfig, features: list[str], window: int, max_gap, threshold: float) -> ScoringSpec:
    """The ScoringSpec of a trained pipeline."""
    return ScoringSpec(data.time_col, data.entity_col, list(features), window, max_gap, float(threshold),
                       data.mode, data.horizon)


def hold_out_split(series: Series, index: WindowIndex, split: SplitConfig, share: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions (train, held out) in ``index``: the latest ``share`` of the data is held back from the refit.

    Split by entity: the last ``share`` of the entities in order of appearance (at least one, never all).
    By time: windows ending in the latest ``share`` of window-end times; a training window whose target reads
    a row at or after the held-out start is purged, then ``split.embargo`` rows more, as in the folds.
    """
    n = len(index.ends)
    if split.by == "entity":
        codes = series.entity[index.ends]
        n_entities = len(series.starts)
        n_hold = min(n_entities - 1, max(1, int(round(n_entities * share))))
        if n_hold < 1:
            return np.arange(n), np.zeros(0, np.int64)
        held = codes >= n_entities - n_hold
        return np.flatnonzero(~held), np.flatnonzero(held)
    end_t = series.time[index.ends]
    start = np.sort(end_t)[min(n - 1, int(n * (1 - share)))]
    reach_t = _reach_time(series, index, split.embargo)
    return np.flatnonzero((end_t < start) & (reach_t < start)), np.flatnonzero(end_t >= start)


def _halves(series: Series, index: WindowIndex, pos: np.ndarray, by: str) -> list[np.ndarray]:
    """The held-out positions cut in two, earlier and later (by entity, or by window-end time)."""
    key = series.entity[index.ends[pos]] if by == "entity" else series.time[index.ends[pos]]
    cut = np.sort(key)[len(key) // 2]
    first = key < cut
    if not first.any() or first.all():  # one entity or one time: cut by position
        first = np.arange(len(pos)) < len(pos) // 2
    return [pos[first], pos[~first]]


def evaluate_held_out(y: np.ndarray, scores: np.ndarray, halves: list[np.ndarray], metric: str) -> dict:
    """The final model's own metrics on ``y``/``scores`` (its held-out windows) and its threshold.

    The threshold is chosen on all of them; MCC, F1, precision and recall are cross-fitted so that no window is
    scored with a threshold chosen on itself: the threshold chosen on one half labels the other, and the two
    halves' predictions are pooled. PR-AUC, ROC-AUC and Brier need no threshold. ``halves`` index ``y``.
    """
    threshold = choose_threshold(y, scores, metric)
    pred = np.zeros(len(y), bool)
    for a, b in (halves, halves[::-1]):
        pred[b] = scores[b] >= choose_threshold(y[a], scores[a], metric)
    whole = score_metrics(y, scores, threshold)
    crossed = score_metrics(y, pred.astype(np.float64), 0.5)
    out = {k: whole[k] for k in ("pr_auc", "roc_auc", "brier") if k in whole}
    out.update({k: crossed[k] for k in ("mcc", "f1", "precision", "recall") if k in crossed})
    return {**out, "threshold": float(threshold), "windows": int(len(y)), "positives": int(np.sum(y))}


def fit_final(series: Series, index: WindowIndex, cfg: PipelineConfig, epochs: int | None = None,
              threshold: float | None = None, on_epoch: EpochCallback | None = None, *, steps: int | None = None,
              schedule_steps: int | None = None, hold_out: float | None = None,
              in_place: bool = False) -> RareEventScorer:
    """Refit after the walk-forward and wrap scaler, network(s) and threshold.

    The budget: ``steps`` optimiser steps of a ``schedule_steps`` schedule (the folds' median best step and
    budget, so the refit trains as the folds did), or ``epochs`` passes, or the config's budget.

    With ``hold_out`` (a share, e.g. split.val_fraction) the latest slice of the data is held back
    (``hold_out_split``): the model trains on the rest, its threshold is chosen on its own scores of the held-out
    windows, and ``scorer.evaluation`` holds its metrics there (``evaluate_held_out``) with the budget it trained
    for. A held-out slice without both classes cannot choose a threshold: then ``threshold`` (the folds'
    median) is kept and the threshold-free metrics are nan. Without ``hold_out`` it refits on every window
    and keeps ``threshold``; ``scorer.evaluation`` stays empty.

    ``in_place=True`` scales ``series.features`` itself (float32, a copy the caller read for this refit alone and
    no longer needs unscaled), as ``fold_windows`` does: the refit then holds one row array instead of two.
    """
    length = cfg.window.length
    train_pos, held = np.arange(len(index.ends)), np.zeros(0, np.int64)
    if hold_out:
        train_pos, held = hold_out_split(series, index, cfg.split, hold_out)
    mean, scale = fit_scaler(series.features, index.ends[train_pos], length)
    rows = scale_rows(series.features, mean, scale, in_place=in_place)
    res = resample(window_set(rows, index, length, train_pos), cfg.resample, cfg.train.seed)
    results = fit_model(res.windows, None, cfg.model, cfg.train, cfg.resample, res.pos_weight, epochs=epochs,
                        steps=steps, schedule_steps=schedule_steps, on_epoch=on_epoch).results
    nets = [rebuild_network(r.state_dict, r.n_features, cfg.model) for r in results]
    net: nn.Module | list[nn.Module] = nets if len(nets) > 1 else nets[0]
    result = results[0]
    evaluation: dict = {}
    if len(held):
        held_ws = window_set(rows, index, length, held)
        nets = net if isinstance(net, list) else [net]
        scores = np.mean([predict_proba(n, held_ws, cfg.train.device) for n in nets], axis=0)
        y = held_ws.y.astype(np.int64)
        nan = float("nan")
        if 0 < y.sum() < len(y):
            halves = [np.searchsorted(held, h) for h in _halves(series, index, held, cfg.split.by)]
            evaluation = evaluate_held_out(y, scores, halves, cfg.evaluate.threshold_metric)
        else:
            kept = float(threshold if threshold is not None else 0.5)
            m = score_metrics(y, scores, kept)
            evaluation = {"pr_auc": nan, "roc_auc": nan, "brier": m.get("brier", nan), "mcc": nan, "f1": nan,
                          "precision": nan, "recall": nan, "threshold": kept, "windows": int(len(y)),
                          "positives": int(y.sum())}
        threshold = evaluation["threshold"]
        evaluation.update({"train_windows": int(len(train_pos)), "steps": int(result.history[-1]["step"]) if result.history else 0,
                           "schedule_steps": int(result.schedule_steps), "held_out": _held_out_words(
                               series, index, held, cfg.split.by, hold_out)})
    if threshold is None:
        raise ValueError("fit_final needs a threshold when no slice is held out")
    spec = scoring_spec(cfg.data, list(series.spec.features), length, cfg.window.max_gap, threshold)
    return RareEventScorer(net, mean, scale, spec, evaluation)


def _held_out_words(series: Series, index: WindowIndex, held: np.ndarray, by: str, share: float) -> str:
    """'the last 20 of 100 entities' / 'windows ending 2014-07-01T00:00:00 or later' (the latest 20%)."""
    if by == "entity":
        n_entities = len(series.starts)
        return f"the last {len(np.unique(series.entity[index.ends[held]]))} of {n_entities} entities"
    start = int(series.time[index.ends[held]].min())
    when = str(np.datetime64(start, "ns").astype("datetime64[s]")) if series.time_is_datetime else start
    return f"windows ending at {when} or later (the latest {share:.0%})"
