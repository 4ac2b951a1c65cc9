"""Balanced bagging: K LSTMs, each trained on every positive window and its own random draw of negatives.

Their probabilities are averaged. Each member sees a balanced problem without a single synthetic window, and the
draws differ, so together they see most negatives. Member i uses seed + i for its draw and its initial weights,
so member 1 starts exactly like the single LSTM would. Members train one after another on the same rows (a
member's windows are a subset of the fold's ends, not a copy).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from lstm_core.config import ModelConfig, ResampleConfig, TrainConfig
from lstm_core.resample import bagging_draws
from lstm_core.train import (
    Checkpointer,
    EpochCallback,
    LSTMWindowModel,
    TrainResult,
    build_model,
    fit_lstm,
    predict_proba,
)
from lstm_core.windows import WindowSet


def fit_members(train: WindowSet, val: WindowSet | None, model_cfg: ModelConfig, train_cfg: TrainConfig,
                resample_cfg: ResampleConfig, epochs: int | None = None,
                on_epoch: EpochCallback | None = None,
                checkpoint_for: Callable[[int], Checkpointer] | None = None, steps: int | None = None,
                schedule_steps: int | None = None) -> list[TrainResult]:
    """Train ``resample_cfg.bagging_estimators`` LSTMs, each on all positives plus its own negatives.

    ``checkpoint_for(i)`` gives member i (from 1) its own checkpoint, so a resumed fold skips finished members.
    """
    results = []
    for i, idx in enumerate(bagging_draws(train.y, resample_cfg, train_cfg.seed)):
        member_cfg = train_cfg.model_copy(update={"seed": train_cfg.seed + i})
        report = None if on_epoch is None else (lambda row, i=i: on_epoch({**row, "member": i + 1}))
        checkpoint = None if checkpoint_for is None else checkpoint_for(i + 1)
        results.append(fit_lstm(train.subset(idx), val, model_cfg, member_cfg, epochs=epochs, on_epoch=report,
                                checkpoint=checkpoint, steps=steps, schedule_steps=schedule_steps))
    return results


class BalancedBaggingLSTM:
    """K LSTMs behind the same fit/predict_proba protocol as the single LSTM and the baselines, their
    probabilities averaged: the members of balanced bagging or of a seed ensemble (``model.ensemble_seeds``)."""

    name = "lstm"

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, resample_cfg: ResampleConfig,
                 on_epoch: EpochCallback | None = None) -> None:
        self.model_cfg, self.train_cfg, self.resample_cfg = model_cfg, train_cfg, resample_cfg
        self.on_epoch = on_epoch
        self.results: list[TrainResult] = []

    def fit(self, train: WindowSet, val: WindowSet | None = None) -> BalancedBaggingLSTM:
        """Train the members the config asks for: balanced-bagging draws, or a seed ensemble (``fit_model``)."""
        self.results = fit_model(train, val, self.model_cfg, self.train_cfg, self.resample_cfg,
                                 on_epoch=self.on_epoch).results
        return self

    def predict_proba(self, windows: WindowSet) -> np.ndarray:
        """The mean of the members' probabilities."""
        if not self.results:
            raise RuntimeError("fit the ensemble before predict_proba")
        probs = [predict_proba(build_model(r, self.model_cfg), windows, self.train_cfg.device) for r in self.results]
        return np.mean(probs, axis=0)  # (K, n) -> (n,)


FoldModel = LSTMWindowModel | BalancedBaggingLSTM  # what fit_model returns: one protocol, one or K networks


def model_from(results: list[TrainResult], model_cfg: ModelConfig, train_cfg: TrainConfig,
               resample_cfg: ResampleConfig) -> FoldModel:
    """The fitted model behind the window-model protocol: one result is the single LSTM; more are averaged (the
    members of a balanced-bagging or a seed ensemble)."""
    if len(results) > 1 or resample_cfg.strategy == "balanced_bagging":
        ensemble = BalancedBaggingLSTM(model_cfg, train_cfg, resample_cfg)
        ensemble.results = list(results)
        return ensemble
    model = LSTMWindowModel(model_cfg, train_cfg)
    model.result = results[0]
    return model


def fit_model(train: WindowSet, val: WindowSet | None, model_cfg: ModelConfig, train_cfg: TrainConfig,
              resample_cfg: ResampleConfig, pos_weight: float | None = None, *, epochs: int | None = None,
              on_epoch: EpochCallback | None = None, checkpoint_for: Callable[[int], Checkpointer] | None = None,
              steps: int | None = None, schedule_steps: int | None = None) -> FoldModel:
    """Train what ``resample_cfg`` asks for on windows it already resampled: the balanced-bagging members, or
    one LSTM with ``pos_weight``. ``checkpoint_for(i)`` gives member i (from 1; the single LSTM is member 1) its
    checkpoint. The result's ``results`` lists every network's ``TrainResult``."""
    budget = {"epochs": epochs, "on_epoch": on_epoch, "steps": steps, "schedule_steps": schedule_steps}
    if resample_cfg.strategy == "balanced_bagging":
        results = fit_members(train, val, model_cfg, train_cfg, resample_cfg, checkpoint_for=checkpoint_for, **budget)
    else:
        results = fit_seeds(train, val, model_cfg, train_cfg, pos_weight, checkpoint_for=checkpoint_for, **budget)
    return model_from(results, model_cfg, train_cfg, resample_cfg)


def fit_seeds(train: WindowSet, val: WindowSet | None, model_cfg: ModelConfig, train_cfg: TrainConfig,
              pos_weight: float | None = None, *, epochs: int | None = None, on_epoch: EpochCallback | None = None,
              checkpoint_for: Callable[[int], Checkpointer] | None = None, steps: int | None = None,
              schedule_steps: int | None = None) -> list[TrainResult]:
    """``model_cfg.ensemble_seeds`` LSTMs on the same windows, network i from seed ``train_cfg.seed + i`` (its
    initial weights, batch order and noise); the first is exactly the single LSTM. Averaged by ``model_from``."""
    results = []
    for i in range(model_cfg.ensemble_seeds):
        member_cfg = train_cfg.model_copy(update={"seed": train_cfg.seed + i})
        report = on_epoch if on_epoch is None or model_cfg.ensemble_seeds == 1 else (
            lambda row, i=i: on_epoch({**row, "member": i + 1}))
        checkpoint = None if checkpoint_for is None else checkpoint_for(i + 1)
        results.append(fit_lstm(train, val, model_cfg, member_cfg, pos_weight, epochs=epochs, on_epoch=report,
                                checkpoint=checkpoint, steps=steps, schedule_steps=schedule_steps))
    return results
