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
from lstm_core.model import LSTMClassifier
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
    """What one training run produced."""

    state_dict: dict[str, torch.Tensor]
    n_features: int
    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_val_pr_auc: float = float("nan")
    device: str = "cpu"
    seconds: float = 0.0


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
    """Logits for every window, in large batches."""
    model.eval()
    out = []
    for start in range(0, len(data), batch_size):
        idx = torch.arange(start, min(start + batch_size, len(data)), device=data.device)
        with _autocast(data.device):
            out.append(model(data.batch(idx)[0]).float())
    return torch.cat(out) if out else torch.zeros(0)


def predict_proba(model: nn.Module, ws: WindowSet, device: str = "auto", batch_size: int = 8192) -> np.ndarray:
    """Event probabilities for every window of ``ws``."""
    dev = resolve_device(device)
    model.to(dev)
    return torch.sigmoid(predict_logits(model, DeviceWindows(ws, dev), batch_size)).cpu().numpy().astype(np.float64)


def _val_score(model: nn.Module, val: DeviceWindows, loss_fn: nn.Module) -> tuple[float, float]:
    logits = predict_logits(model, val)
    loss = float(loss_fn(logits, val.y))
    y = val.y.cpu().numpy()
    if 0 < y.sum() < len(y):
        return loss, float(average_precision_score(y, torch.sigmoid(logits).cpu().numpy()))
    return loss, float("nan")


def _train_epoch(model, data: DeviceWindows, opt, loss_fn, cfg: TrainConfig, gen: torch.Generator) -> float:
    model.train()
    order = torch.randperm(len(data), generator=gen).to(data.device)
    total, seen = 0.0, 0
    for start in range(0, len(data), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        x, y = data.batch(idx)
        with _autocast(data.device):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
        total += float(loss.detach()) * len(idx)
        seen += len(idx)
    return total / max(seen, 1)


def _run_identity(train: WindowSet, val: WindowSet | None, model_cfg: ModelConfig, train_cfg: TrainConfig,
                  pos_weight: float | None, epochs: int) -> str:
    """What a checkpoint must match to be resumed: the configs, the epoch budget and the data's shape."""
    tree = {"model": model_cfg.model_dump(mode="json"), "train": train_cfg.model_dump(mode="json"),
            "pos_weight": pos_weight, "epochs": epochs, "windows": [len(train), train.n_features, train.length],
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


def fit_lstm(
    train: WindowSet,
    val: WindowSet | None,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    pos_weight: float | None = None,
    epochs: int | None = None,
    on_epoch: EpochCallback | None = None,
    checkpoint: Checkpointer | None = None,
) -> TrainResult:
    """Train with AdamW, BCE, clipping, ReduceLROnPlateau and early stopping on validation PR-AUC.

    Without ``val`` it trains for exactly ``epochs`` (the final refit on all data). With ``checkpoint`` the
    whole loop state (weights, optimiser, scheduler, every RNG, history, best weights, early-stopping counter)
    is saved after each epoch, before ``on_epoch`` runs; a later call with a checkpoint of the same run goes on
    from the next epoch and ends with the same weights as a run that was never interrupted.
    """
    seed_everything(train_cfg.seed)
    device = resolve_device(train_cfg.device)
    model = LSTMClassifier(train.n_features, model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, "max", factor=train_cfg.lr_factor,
                                                       patience=train_cfg.lr_patience)
    weight = None if pos_weight is None else torch.tensor(pos_weight, device=device)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=weight)
    gen = torch.Generator().manual_seed(train_cfg.seed)
    data = DeviceWindows(train, device)
    val_data = DeviceWindows(val, device) if val is not None and len(val) else None
    result = TrainResult({}, train.n_features, device=str(device))
    max_epochs = epochs or train_cfg.epochs
    identity = _run_identity(train, val, model_cfg, train_cfg, pos_weight, max_epochs)
    best, stale, done, spent, started = -math.inf, 0, 0, 0.0, time.perf_counter()
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None and saved.get("identity") == identity:  # another run's state is never resumed
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        sched.load_state_dict(saved["scheduler"])
        gen.set_state(saved["generator"])
        _set_rng_states(saved["rng"])
        best, stale, done, spent = saved["best"], saved["stale"], saved["epoch"], saved["seconds"]
        result.history, result.best_epoch = saved["history"], saved["best_epoch"]
        result.best_val_pr_auc, result.state_dict = saved["best_val_pr_auc"], saved["best_state"]
    for epoch in range(done + 1, max_epochs + 1):
        if stale >= train_cfg.patience:  # a resumed run that had already stopped early
            break
        row: dict[str, float] = {"epoch": epoch, "loss": _train_epoch(model, data, opt, loss_fn, train_cfg, gen)}
        row["lr"] = opt.param_groups[0]["lr"]
        if val_data is not None:
            row["val_loss"], row["val_pr_auc"] = _val_score(model, val_data, loss_fn)
            # PR-AUC is undefined on a validation slice without positives; fall back to the loss.
            score = row["val_pr_auc"] if not math.isnan(row["val_pr_auc"]) else -row["val_loss"]
            sched.step(score)
        else:
            score = float(epoch)  # no validation: the last epoch is the model
        result.history.append(row)
        if score > best:
            best, stale = score, 0
            result.best_epoch, result.best_val_pr_auc = epoch, row.get("val_pr_auc", float("nan"))
            result.state_dict = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        else:
            stale += 1
        if checkpoint is not None:
            checkpoint.save({
                "identity": identity, "epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict(), "generator": gen.get_state(), "rng": _rng_states(),
                "best": best, "stale": stale, "history": result.history, "best_epoch": result.best_epoch,
                "best_val_pr_auc": result.best_val_pr_auc, "best_state": result.state_dict,
                "seconds": spent + time.perf_counter() - started})
        if on_epoch:
            on_epoch(row)
    result.seconds = spent + time.perf_counter() - started
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

    def predict_proba(self, windows: WindowSet) -> np.ndarray:
        if self.result is None:
            raise RuntimeError("fit the model before predict_proba")
        return predict_proba(build_model(self.result, self.model_cfg), windows, self.train_cfg.device)
