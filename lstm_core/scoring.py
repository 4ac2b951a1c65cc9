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

from lstm_core.config import DataConfig, ModelConfig, PipelineConfig
from lstm_core.data import DataError, DataSpec, Series, to_series
from lstm_core.ensemble import fit_members
from lstm_core.model import LSTMClassifier
from lstm_core.resample import resample
from lstm_core.splits import fit_scaler, scale_rows
from lstm_core.train import EpochCallback, fit_lstm
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
    """

    def __init__(self, network: nn.Module | Sequence[nn.Module], mean: np.ndarray, scale: np.ndarray,
                 spec: ScoringSpec) -> None:
        super().__init__()
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
    scores = np.concatenate([scorer(torch.as_tensor(ws.gather(slice(i, i + batch_size)))).numpy()
                             for i in range(0, len(ends), batch_size)]) if len(ends) else np.zeros(0)
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


def fit_final(series: Series, index: WindowIndex, cfg: PipelineConfig, epochs: int, threshold: float,
              on_epoch: EpochCallback | None = None) -> RareEventScorer:
    """Refit on every window of the data for ``epochs`` epochs and wrap scaler, network(s) and threshold."""
    length = cfg.window.length
    mean, scale = fit_scaler(series.features, index.ends, length)
    rows = scale_rows(series.features, mean, scale)
    res = resample(window_set(rows, index, length), cfg.resample, cfg.train.seed)
    if res.info["strategy"] == "balanced_bagging":
        results = fit_members(res.windows, None, cfg.model, cfg.train, cfg.resample, epochs=epochs,
                              on_epoch=on_epoch)
        net: nn.Module | list[nn.Module] = [rebuild_network(r.state_dict, r.n_features, cfg.model) for r in results]
    else:
        result = fit_lstm(res.windows, None, cfg.model, cfg.train, res.pos_weight, epochs=epochs, on_epoch=on_epoch)
        net = rebuild_network(result.state_dict, result.n_features, cfg.model)
    spec = scoring_spec(cfg.data, list(series.spec.features), length, cfg.window.max_gap, threshold)
    return RareEventScorer(net, mean, scale, spec)
