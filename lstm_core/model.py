"""The network: stacked LSTM, dropout, last hidden state → one logit. Nothing else lives here."""
from __future__ import annotations

import torch
from torch import nn

from lstm_core.config import ModelConfig


class LSTMClassifier(nn.Module):
    """Maps windows (B, L, F) to event logits (B,)."""

    def __init__(self, n_features: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_features = n_features
        self.cfg = cfg
        self.lstm = nn.LSTM(
            input_size=n_features,
            hidden_size=cfg.hidden,
            num_layers=cfg.layers,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.hidden, 1)
        self._init_forget_bias(cfg.forget_bias)

    def _init_forget_bias(self, value: float) -> None:
        # PyTorch orders gates (input, forget, cell, output) and adds bias_ih + bias_hh, so the forget slice
        # of bias_ih carries the whole value and that of bias_hh is zeroed.
        h = self.cfg.hidden
        for name, param in self.lstm.named_parameters():
            if name.startswith("bias"):
                with torch.no_grad():
                    param[h:2 * h].fill_(value if name.startswith("bias_ih") else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)  # (B, L, H)
        last = self.drop(out[:, -1, :])  # (B, H): the state after the window's last row
        return self.head(last).squeeze(-1)  # (B,)
