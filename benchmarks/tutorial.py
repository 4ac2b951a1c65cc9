"""The tutorial-style reference loop the project is measured against (do not use it for anything else).

Every window is materialised with a Python loop and ``np.stack`` (L copies of the data), a
``TensorDataset`` feeds a shuffling ``DataLoader``, and each batch is copied to the device.
The model, loss, optimiser and clipping are the project's own, so only the data path differs.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lstm_core.config import ModelConfig, TrainConfig
from lstm_core.model import LSTMClassifier


def train_tutorial_style(x: np.ndarray, y: np.ndarray, window: int, model_cfg: ModelConfig, cfg: TrainConfig,
                         device: torch.device) -> int:
    """Train for ``cfg.epochs``; return how many windows were seen."""
    seqs = np.stack([x[t - window + 1:t + 1] for t in range(window - 1, len(x))])  # (n, L, F): L copies
    labels = y[window - 1:].astype(np.float32)
    loader = DataLoader(TensorDataset(torch.from_numpy(seqs), torch.from_numpy(labels)),
                        batch_size=cfg.batch_size, shuffle=True)
    model = LSTMClassifier(x.shape[1], model_cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    seen = 0
    for _ in range(cfg.epochs):
        model.train()
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            loss = loss_fn(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            opt.step()
            seen += len(yb)
    return seen
