"""The training loop. It returns the weights and the curves; the caller decides what to record.

The fold's rows live in one device tensor and a batch is an index gather of whole windows from it, so
no per-sample Python runs and no (n, L, F) copy of the data is ever built.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torch import nn

from lstm_core.config import ModelConfig, TrainConfig
from lstm_core.model import LSTMClassifier, window_summaries
from lstm_core.windows import WindowSet

EpochCallback = Callable[[dict[str, float]], None]


class Checkpointer(Protocol):
    """Where ``fit_lstm`` keeps its state between epochs. The caller decides where (a file, memory)."""

    def load(self) -> dict[str, Any] | None:
        """The latest saved state, or None when there is none."""

    def save(self, state: dict[str, Any]) -> None:
        """Replace the saved state. It must be atomic (a crash leaves the old state or the new, never half) and
        copy or serialise ``state`` at once: its tensors keep changing as training goes on."""


@dataclass
class TrainResult:
    """What one training run produced.

    ``best_epoch`` counts evaluations (history rows' ``epoch``: 0 is the logistic start, when the network has one),
    ``best_step`` optimiser steps (0: the start was kept); ``schedule_steps`` is the step budget the
    learning-rate schedule spanned. A refit that should train like this run passes
    ``steps=best_step, schedule_steps=schedule_steps`` to ``fit_lstm``.
    """

    state_dict: dict[str, torch.Tensor]
    n_features: int
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_pr_auc: float = float("nan")
    device: str = "cpu"
    seconds: float = 0.0
    best_step: int = 0
    schedule_steps: int = 0
    pos_weight: float | None = None


def step_budget(n_windows: int, cfg: TrainConfig, epochs: int | None = None) -> int:
    """Optimiser steps a run may take: ``cfg.epochs`` passes over ``n_windows``, raised to ``cfg.min_steps``.

    An explicit ``epochs`` (a caller that wants exactly so many passes) is taken as it is, without the floor.
    """
    per_epoch = math.ceil(n_windows / cfg.batch_size)
    if epochs is not None:
        return max(epochs * per_epoch, 1)
    return max(cfg.epochs * per_epoch, cfg.min_steps, 1)


def lr_factor(step: int, total: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` for optimiser step ``step`` (0-based) of a ``total``-step budget.

    cosine: rises linearly over the first ``warmup_fraction`` of the budget (step 0 gets 1/warmup), then follows
    half a cosine from 1 down to 0 at step ``total``. Other schedules: 1 (plateau moves the rate itself).
    """
    if cfg.schedule != "cosine":
        return 1.0
    warmup = int(cfg.warmup_fraction * total)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def balanced_pos_weight(y: np.ndarray) -> float | None:
    """negatives / positives: the weight that makes both classes count alike (None without both classes)."""
    pos = int(np.sum(y))
    return None if pos == 0 or pos == len(y) else (len(y) - pos) / pos


def resolve_device(name: str) -> torch.device:
    """'auto' picks CUDA when present; asking for CUDA without one is an error, not a silent fallback."""
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device=cuda but no CUDA device is available; use --device cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch so a fold trains the same way twice."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class DeviceWindows:
    """A WindowSet's rows and ends moved to the device once; batches are gathered there.

    When the rows would take more than ``device_fraction`` of the GPU's free memory they stay in pinned host
    memory instead: each batch is gathered on the host and copied with a non-blocking transfer.
    """

    def __init__(self, ws: WindowSet, device: torch.device, device_fraction: float = 0.5) -> None:
        self.device = device
        self.streamed = device.type == "cuda" and ws.rows.nbytes > device_fraction * torch.cuda.mem_get_info(device)[0]
        home = torch.device("cpu") if self.streamed else device
        rows = torch.as_tensor(ws.rows)
        self.rows = rows.pin_memory() if self.streamed else rows.to(home)  # (N, F)
        self.ends = torch.as_tensor(ws.ends, device=home)  # (n,)
        self.y = torch.as_tensor(ws.y, dtype=torch.float32, device=device)  # (n,)
        self.offsets = torch.arange(-ws.length + 1, 1, device=home)  # (L,)

    def __len__(self) -> int:
        return len(self.ends)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, F) windows and (B,) targets on the device, for window positions ``idx``."""
        if not self.streamed:
            return self.rows[self.ends[idx, None] + self.offsets], self.y[idx]
        host = idx.cpu()
        x = self.rows[self.ends[host, None] + self.offsets].pin_memory()
        return x.to(self.device, non_blocking=True), self.y[idx.to(self.device)]


def _autocast(device: torch.device):
    # bf16 keeps fp32's exponent range, so no loss scaling is needed; on the CPU it would only slow down.
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.inference_mode()
def predict_logits(model: nn.Module, data: DeviceWindows, batch_size: int = 8192) -> torch.Tensor:
    """Logits for every window, in large batches, in fp32 on every device.

    Autocast is for training steps only: bf16 keeps 8 bits of mantissa, which ties close scores and moves
    thresholds, so validation, test and scoring never run under it (autocast is switched off explicitly, in
    case the caller runs inside an autocast region).

    The logits are written into one tensor allocated up front. Kept as a list of small per-batch tensors,
    each allocated between one batch's large temporaries and the next's, they fragmented glibc's arena on a
    worker thread: evaluating 3.3M windows grew the process by 7.8 GB (to 9.6 GB; 2.3 GB this way).
    """
    model.eval()
    out = torch.empty(len(data), device=data.device)
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=data.device)
        with torch.autocast(data.device.type, enabled=False):
            out[start:start + len(idx)] = model(data.batch(idx)[0].float())
    return out


def predict_proba(model: nn.Module, ws: WindowSet, device: str = "auto", batch_size: int = 8192) -> np.ndarray:
    """Event probabilities for every window of ``ws``."""
    dev = resolve_device(device)
    model.to(dev)
    return torch.sigmoid(predict_logits(model, DeviceWindows(ws, dev), batch_size)).cpu().numpy().astype(np.float64)


# The logistic start of the head is fitted on a stratified sample of at most this many training windows: their
# float64 summaries then take at most 200k × 6F × 8 bytes (300 MB at 32 features).
HEAD_START_WINDOWS = 200_000


@torch.inference_mode()
def _summaries(model: LSTMClassifier, data: DeviceWindows, idx: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """(n, S·F) float64: the window statistics the head reads, for window positions ``idx``, without noise."""
    out = np.empty((len(idx), len(model.head_stats) * model.n_features), dtype=np.float64)
    for start in range(0, len(idx), batch_size):
        pos = torch.as_tensor(idx[start:start + batch_size], device=data.device)
        out[start:start + len(pos)] = window_summaries(data.batch(pos)[0].float(), model.head_stats).cpu().numpy()
    return out


def logistic_head_start(model: LSTMClassifier, data: DeviceWindows, pos_weight: float | None, seed: int,
                        max_windows: int = HEAD_START_WINDOWS) -> bool:
    """Start the head as the logistic baseline: a logistic regression on the training windows' summaries, with
    the recurrent state's weights at zero, so the untrained network scores every window as that regression does.

    It is fitted the way ``LogisticBaseline`` is (scikit-learn's lbfgs, C=1, on standardised summaries, the
    positives weighing ``pos_weight`` as in the loss, the weights scaled to a mean of 1: with the balanced
    ``pos_weight`` these are exactly class_weight='balanced'), on a stratified sample of at most ``max_windows``
    windows; the standardisation is folded into the head's weights. With one class only there is nothing to
    fit: the head keeps its initial weights and False is returned.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from lstm_core.baselines import stratified_sample

    y = data.y.cpu().numpy().astype(np.int64)
    if len(y) == 0 or y.min() == y.max():
        return False
    keep = stratified_sample(y, max_windows, seed)
    idx = np.arange(len(y)) if keep is None else keep
    s = _summaries(model, data, idx)
    scaler = StandardScaler().fit(s)
    weight = np.where(y[idx] == 1, 1.0 if pos_weight is None else pos_weight, 1.0)
    weight *= len(weight) / weight.sum()
    z = scaler.transform(s, copy=False)  # standardised where they lie: no second 300 MB array on large data
    fit = LogisticRegression(max_iter=1000, random_state=seed).fit(z, y[idx], sample_weight=weight)
    coef = fit.coef_[0] / scaler.scale_  # (S·F,): logit = coef · s + bias on the unstandardised summaries
    bias = float(fit.intercept_[0] - coef @ scaler.mean_)
    state = model.head.in_features - len(coef)  # the recurrent state's (or attention context's) share
    with torch.no_grad():
        model.head.weight[0, :state] = 0.0
        model.head.weight[0, state:] = torch.as_tensor(coef, dtype=model.head.weight.dtype)
        model.head.bias.fill_(bias)
    return True


def _val_score(model: nn.Module, val: DeviceWindows, loss_fn: nn.Module) -> tuple[float, float]:
    """The training loss (``loss_fn``: BCE, positives weighted as in training) and PR-AUC (nan without both
    classes) of ``model`` on the validation windows."""
    logits = predict_logits(model, val)
    loss = float(loss_fn(logits, val.y))
    y = val.y.cpu().numpy()
    if 0 < y.sum() < len(y):
        return loss, float(average_precision_score(y, torch.sigmoid(logits).cpu().numpy()))
    return loss, float("nan")


def _train_step(model, x: torch.Tensor, y: torch.Tensor, opt, loss_fn, cfg: TrainConfig) -> float:
    model.train()
    with _autocast(x.device):
        logits = model(x)
    loss = loss_fn(logits.float(), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
    opt.step()
    return float(loss.detach())


def _run_identity(train: WindowSet, val: WindowSet | None, model_cfg: ModelConfig, train_cfg: TrainConfig,
                  pos_weight: float | None, budget: tuple[int, int]) -> str:
    """What a checkpoint must match to be resumed: the configs, the step budget and the data's shape."""
    tree = {"model": model_cfg.model_dump(mode="json"), "train": train_cfg.model_dump(mode="json"),
            "pos_weight": pos_weight, "budget": list(budget), "windows": [len(train), train.n_features, train.length],
            "val": None if val is None else len(val)}
    return hashlib.sha256(json.dumps(tree, sort_keys=True, default=str).encode()).hexdigest()


def _rng_states() -> dict[str, Any]:
    states = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict[str, Any]) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})


def _trained_rows(history: list[dict[str, float]]) -> int:
    """Evaluations after at least one step (evaluation 0, the logistic start, is not counted)."""
    return sum(1 for row in history if row["step"] > 0)


def _smoothed(history: list[dict[str, float]], key: str, span: int = 3) -> float:
    values = [row[key] for row in history[-span:]]
    return float(np.mean(values))


def fit_lstm(
    train: WindowSet,
    val: WindowSet | None,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    pos_weight: float | None = None,
    epochs: int | None = None,
    on_epoch: EpochCallback | None = None,
    checkpoint: Checkpointer | None = None,
    steps: int | None = None,
    schedule_steps: int | None = None,
) -> TrainResult:
    """Train with AdamW, BCE, clipping, a step-based schedule, weight averaging and early stopping.

    The budget is ``step_budget`` optimiser steps (``schedule_steps`` when given: a refit that must follow the
    folds' schedule); batches are drawn from a fresh shuffle every pass. Every budget/evaluations steps the
    averaged (EMA) weights are evaluated on ``val`` and a history row is written. ``train_cfg.select_on`` decides
    which evaluation's weights are kept, and early stopping ends the run after ``patience`` evaluations without
    a better one. Without ``val`` the run takes ``steps`` steps (default: the whole budget) and keeps the last
    weights: the final refit. ``pos_weight`` (from the resampler) wins over ``train_cfg.loss_weight``.

    With ``model_cfg.head_init == "logistic"`` the network starts as the logistic baseline (``logistic_head_start``)
    and, with ``val``, that start is evaluation 0 (step 0): it stays the kept model unless a trained state beats it
    on ``select_on``. ``steps=0`` (a refit of folds that all kept their start) takes no step.

    With ``checkpoint`` the whole loop state (weights, averaged weights, optimiser, scheduler, shuffle position,
    every RNG, history, best weights, early-stopping counter) is saved at each evaluation, before ``on_epoch``
    runs; a later call with a checkpoint of the same run goes on from there and ends with the same weights as a
    run that was never interrupted.
    """
    seed_everything(train_cfg.seed)
    device = resolve_device(train_cfg.device)
    model = LSTMClassifier(train.n_features, model_cfg).to(device)
    if pos_weight is None and train_cfg.loss_weight == "balanced":
        pos_weight = balanced_pos_weight(train.y)
    data = DeviceWindows(train, device)
    # the start is a candidate for the kept weights only when it is a model (the logistic start), not noise
    started = (model_cfg.head_init == "logistic" and model_cfg.head_summaries
               and logistic_head_start(model, data, pos_weight, train_cfg.seed))
    ema = None
    if train_cfg.ema_decay is not None:
        ema = torch.optim.swa_utils.AveragedModel(
            model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(train_cfg.ema_decay), use_buffers=True)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    total = schedule_steps or step_budget(len(train), train_cfg, epochs)
    stop_at = total if steps is None else min(steps, total)
    sched: Any = (torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", factor=train_cfg.lr_factor,
                                                             patience=train_cfg.lr_patience)
                  if train_cfg.schedule == "plateau" else
                  torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, total, train_cfg)))
    weight = None if pos_weight is None else torch.tensor(pos_weight, device=device)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=weight)
    gen = torch.Generator().manual_seed(train_cfg.seed)
    val_data = DeviceWindows(val, device) if val is not None and len(val) else None
    use_pr_auc = (train_cfg.select_on == "val_pr_auc" and val_data is not None
                  and 0 < float(val_data.y.sum()) < len(val_data))
    result = TrainResult({}, train.n_features, device=str(device), schedule_steps=total, pos_weight=pos_weight)
    every = max(1, math.ceil(total / train_cfg.evaluations))
    identity = _run_identity(train, val, model_cfg, train_cfg, pos_weight, (total, stop_at))
    best, stale, step, spent, clock = -math.inf, 0, 0, 0.0, time.perf_counter()
    order, pos, running, counted = torch.randperm(len(data), generator=gen), 0, 0.0, 0
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None and saved.get("identity") == identity:  # another run's state is never resumed
        model.load_state_dict(saved["model"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        gen.set_state(saved["generator"])
        _set_rng_states(saved["rng"])
        best, stale, step, spent = saved["best"], saved["stale"], saved["step"], saved["seconds"]
        order, pos = saved["order"], saved["pos"]
        result.history, result.best_epoch, result.best_step = saved["history"], saved["best_epoch"], saved["best_step"]
        result.best_val_pr_auc, result.state_dict = saved["best_val_pr_auc"], saved["best_state"]
    judged = ema if ema is not None else model

    def loop_state(row: dict[str, float]) -> dict[str, Any]:
        """Everything a resumed run needs, after the evaluation ``row``."""
        return {"identity": identity, "epoch": row["epoch"], "step": step, "model": model.state_dict(),
                "ema": None if ema is None else ema.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "generator": gen.get_state(), "rng": _rng_states(),
                "order": order, "pos": pos, "best": best, "stale": stale, "history": result.history,
                "best_epoch": result.best_epoch, "best_step": result.best_step,
                "best_val_pr_auc": result.best_val_pr_auc, "best_state": result.state_dict,
                "seconds": spent + time.perf_counter() - clock}

    if started and val_data is not None and not result.history:
        # Evaluation 0 is the start itself (the logistic baseline): kept unless a trained state beats it.
        row = {"epoch": 0, "step": 0, "lr": opt.param_groups[0]["lr"]}  # no training loss: no step yet
        row["val_loss"], row["val_pr_auc"] = _val_score(judged, val_data, loss_fn)
        result.history.append(row)
        best = _smoothed(result.history, "val_pr_auc") if use_pr_auc else -row["val_loss"]
        result.best_epoch, result.best_step, result.best_val_pr_auc = 0, 0, row["val_pr_auc"]
        result.state_dict = _cpu_state(model)
        if checkpoint is not None:
            checkpoint.save(loop_state(row))
        if on_epoch:
            on_epoch(row)
    while step < stop_at and stale < train_cfg.patience:
        if pos >= len(order):  # a new pass over the training windows
            order, pos = torch.randperm(len(data), generator=gen), 0
        idx = order[pos:pos + train_cfg.batch_size].to(data.device)
        pos += train_cfg.batch_size
        running += _train_step(model, *data.batch(idx), opt, loss_fn, train_cfg) * len(idx)
        counted += len(idx)
        if ema is not None:
            ema.update_parameters(model)
        step += 1
        if train_cfg.schedule != "plateau":
            sched.step()
        if step % every and step < stop_at:
            continue
        row: dict[str, float] = {"epoch": _trained_rows(result.history) + 1, "step": step,
                                 "loss": running / max(counted, 1),
                                 "lr": opt.param_groups[0]["lr"]}
        running, counted = 0.0, 0
        if val_data is not None:
            row["val_loss"], row["val_pr_auc"] = _val_score(judged, val_data, loss_fn)
        result.history.append(row)
        if val_data is None:
            score = float(step)  # no validation: the last weights are the model
        elif use_pr_auc:
            score = _smoothed(result.history, "val_pr_auc")
        else:
            score = -row["val_loss"]
        if train_cfg.schedule == "plateau" and val_data is not None:
            sched.step(score)
        if score > best:
            best, stale = score, 0
            result.best_epoch, result.best_step = row["epoch"], step
            result.best_val_pr_auc = row.get("val_pr_auc", float("nan"))
            result.state_dict = _cpu_state(judged.module if ema is not None else model)
        else:
            stale += 1
        if checkpoint is not None:
            checkpoint.save(loop_state(row))
        if on_epoch:
            on_epoch(row)
    if not result.state_dict:  # no step taken and no evaluation: a refit for 0 steps keeps its start
        result.state_dict = _cpu_state(model)
    result.seconds = spent + time.perf_counter() - clock
    return result


def build_model(result: TrainResult, model_cfg: ModelConfig) -> LSTMClassifier:
    """Rebuild the network a TrainResult describes, in eval mode on the CPU."""
    model = LSTMClassifier(result.n_features, model_cfg)
    model.load_state_dict(result.state_dict)
    return model.eval()


class LSTMWindowModel:
    """The LSTM behind the same fit/predict_proba protocol as the baselines."""

    name = "lstm"

    def __init__(self, model_cfg: ModelConfig, train_cfg: TrainConfig, pos_weight: float | None = None,
                 on_epoch: EpochCallback | None = None) -> None:
        self.model_cfg, self.train_cfg = model_cfg, train_cfg
        self.pos_weight, self.on_epoch = pos_weight, on_epoch
        self.result: TrainResult | None = None

    def fit(self, train: WindowSet, val: WindowSet | None = None) -> LSTMWindowModel:
        self.result = fit_lstm(train, val, self.model_cfg, self.train_cfg, self.pos_weight, on_epoch=self.on_epoch)
        return self

    @property
    def results(self) -> list[TrainResult]:
        """The one network's result, listed like a balanced-bagging ensemble's members."""
        return [] if self.result is None else [self.result]

    def predict_proba(self, windows: WindowSet) -> np.ndarray:
        if self.result is None:
            raise RuntimeError("fit the model before predict_proba")
        return predict_proba(build_model(self.result, self.model_cfg), windows, self.train_cfg.device)
