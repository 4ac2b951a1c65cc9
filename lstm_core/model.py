"""The network: stacked LSTM or GRU layers, optional attention pooling, an optional window-summary input to the
head, one logit per window. Nothing else lives here.

Two layouts share one forward:
- stacked (the default): one fused ``nn.LSTM``/``nn.GRU`` of ``layers`` layers, attribute ``lstm`` (or ``gru``);
- layered: one single-layer module per layer in ``stack``, used when something must happen between layers
  (layer_norm, residual) or inside the time loop (recurrent_dropout while training).
Each layer's weights always live in a PyTorch RNN module, so ``lstm_steps``/``gru_steps`` below and
``lstm_core.interpret`` read the very parameters the fused kernel uses.
"""
from __future__ import annotations

import torch
from torch import nn

from lstm_core.config import ModelConfig

# Per-feature statistics the head can read with ``head_summaries`` (``model.head_stats`` picks them): the
# logistic baseline's six, with its slope stretched over the window ("change"). A network saved before
# head_stats existed read the three of LEGACY_HEAD_STATS, in that order.
HEAD_STATS = ("last", "mean", "std", "min", "max", "change")
LEGACY_HEAD_STATS = ("mean", "last", "change")

# Attributes a network pickled before the variants existed lacks; their values reproduce that network.
_PLAIN = {"cell": "lstm", "pooling": "last", "bidirectional": False, "layered": False, "residual": False,
          "recurrent_dropout": 0.0, "noise_std": 0.0, "head_summaries": False,
          "head_stats": LEGACY_HEAD_STATS}


def window_summaries(x: torch.Tensor, stats: tuple[str, ...] | list[str] = LEGACY_HEAD_STATS) -> torch.Tensor:
    """(B, L, F) windows -> (B, S·F): the per-feature statistics ``stats``, stat-major (all of the first, then
    all of the second, ...).

    "change" is the baseline's least-squares slope per step stretched over the window (the fitted line's rise
    from the first row to the last), so every statistic is on the scale of the scaled features; "std" is the
    population standard deviation, as numpy's.
    """
    length = x.shape[1]
    out = []
    for stat in stats:
        if stat == "mean":
            out.append(x.mean(dim=1))
        elif stat == "last":
            out.append(x[:, -1])
        elif stat == "std":
            # two passes, as numpy computes it: torch's own std reduction over the window's steps is about 20x
            # slower on the CPU (14 ms against 0.7 ms for a (2048, 24, 32) batch: a quarter of a training step)
            out.append((x - x.mean(dim=1, keepdim=True)).square().mean(dim=1).sqrt())
        elif stat == "min":
            out.append(x.amin(dim=1))
        elif stat == "max":
            out.append(x.amax(dim=1))
        elif stat == "change":
            centred = torch.arange(length, dtype=x.dtype, device=x.device) - (length - 1) / 2  # (L,), sums to 0
            ss = float((centred * centred).sum())
            out.append(torch.einsum("l,blf->bf", centred, x) / ss * (length - 1) if ss > 0
                       else torch.zeros_like(x[:, 0]))
        else:
            raise ValueError(f"unknown window statistic {stat!r}; choose from {', '.join(HEAD_STATS)}")
    return torch.cat(out, dim=-1)  # (B, S·F)


def lstm_steps(x: torch.Tensor, w_ih, w_hh, b_ih, b_hh, mask: torch.Tensor | None = None,
               keep_gates: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One LSTM direction stepped through time with nn.LSTM's equations (gate order i, f, g, o).

    ``mask`` (B, H) multiplies the state entering the recurrent product at every step (variational dropout);
    the cell state carries on unmasked. Returns the states (B, L, H) and, with ``keep_gates``, the forget
    gate f_t = σ(W_if x_t + b_if + W_hf h_{t-1} + b_hf) at every step (B, L, H).
    """
    batch, length, _ = x.shape
    hidden = w_hh.shape[1]
    xi = x @ w_ih.T + b_ih  # (B, L, 4H): the input half of every gate, for all steps at once
    h = c = x.new_zeros(batch, hidden)
    states, gates = [], []
    for t in range(length):
        hin = h if mask is None else h * mask
        i, f, g, o = (xi[:, t] + hin @ w_hh.T + b_hh).chunk(4, dim=-1)  # 4 × (B, H)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        c = f * c + i * g
        h = o * torch.tanh(c)
        states.append(h)
        if keep_gates:
            gates.append(f)
    return torch.stack(states, 1), torch.stack(gates, 1) if keep_gates else None


def gru_steps(x: torch.Tensor, w_ih, w_hh, b_ih, b_hh, mask: torch.Tensor | None = None,
              keep_gates: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One GRU direction with nn.GRU's equations (gate order r, z, n); the gate kept is the update gate z,
    the share of the previous state carried over: h_t = (1 − z)·n + z·h_{t-1}."""
    batch, length, _ = x.shape
    hidden = w_hh.shape[1]
    xi = x @ w_ih.T + b_ih  # (B, L, 3H)
    h = x.new_zeros(batch, hidden)
    states, gates = [], []
    for t in range(length):
        hin = h if mask is None else h * mask
        x_r, x_z, x_n = xi[:, t].chunk(3, dim=-1)
        h_r, h_z, h_n = (hin @ w_hh.T + b_hh).chunk(3, dim=-1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        n = torch.tanh(x_n + r * h_n)
        h = (1 - z) * n + z * h
        states.append(h)
        if keep_gates:
            gates.append(z)
    return torch.stack(states, 1), torch.stack(gates, 1) if keep_gates else None


STEPS = {"lstm": lstm_steps, "gru": gru_steps}


def direction_weights(module: nn.RNNBase, layer: int, reverse: bool) -> tuple[torch.Tensor, ...]:
    """(w_ih, w_hh, b_ih, b_hh) of one layer and direction of a PyTorch RNN module."""
    sfx = f"l{layer}{'_reverse' if reverse else ''}"
    return tuple(getattr(module, f"{kind}_{sfx}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))


class LSTMClassifier(nn.Module):
    """Maps windows (B, L, F) to event logits (B,). Despite the name, ``cfg.cell`` may make it a GRU."""

    def __init__(self, n_features: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_features = n_features
        self.cfg = cfg
        self.cell, self.pooling, self.bidirectional = cfg.cell, cfg.pooling, cfg.bidirectional
        self.residual, self.recurrent_dropout = cfg.residual, cfg.recurrent_dropout
        self.noise_std = cfg.augment_noise_std
        self.head_summaries = cfg.head_summaries
        self.head_stats = tuple(cfg.head_stats)
        self.layered = cfg.layer_norm or cfg.residual or cfg.recurrent_dropout > 0
        rnn = nn.LSTM if cfg.cell == "lstm" else nn.GRU
        width = cfg.hidden * (2 if cfg.bidirectional else 1)  # D: what each layer emits per step
        if self.layered:
            self.stack = nn.ModuleList(
                rnn(n_features if k == 0 else width, cfg.hidden, batch_first=True, bidirectional=cfg.bidirectional)
                for k in range(cfg.layers))
        else:
            # Built in this order with these names, the default network matches older checkpoints and seeds.
            setattr(self, cfg.cell, rnn(n_features, cfg.hidden, num_layers=cfg.layers, batch_first=True,
                                        dropout=cfg.dropout if cfg.layers > 1 else 0.0,
                                        bidirectional=cfg.bidirectional))
        self.drop = nn.Dropout(cfg.dropout)
        extra = len(self.head_stats) * n_features if cfg.head_summaries else 0
        self.head = nn.Linear(width + extra, 1)
        if cfg.layer_norm:
            self.norms = nn.ModuleList(nn.LayerNorm(width) for _ in range(cfg.layers))
        if cfg.pooling == "attention_additive":
            self.attn = nn.Linear(width, width)  # W, b of v·tanh(W h_t + b)
            self.attn_v = nn.Linear(width, 1, bias=False)
        if cfg.cell == "lstm":
            self._init_forget_bias(cfg.forget_bias)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        for name, value in _PLAIN.items():  # a network pickled before the variants existed
            if name not in self.__dict__:
                setattr(self, name, value)

    def _init_forget_bias(self, value: float) -> None:
        # PyTorch orders gates (input, forget, cell, output) and adds bias_ih + bias_hh, so the forget slice
        # of bias_ih carries the whole value and that of bias_hh is zeroed.
        h = self.cfg.hidden
        for module in {id(m): m for m, _ in self.recurrent_layers()}.values():
            for name, param in module.named_parameters():
                if name.startswith("bias"):
                    with torch.no_grad():
                        param[h:2 * h].fill_(value if name.startswith("bias_ih") else 0.0)

    def recurrent_layers(self) -> list[tuple[nn.RNNBase, int]]:
        """(module, layer index inside it) for every stacked layer, bottom first."""
        if self.layered:
            return [(m, 0) for m in self.stack]
        module = getattr(self, self.cell)
        return [(module, k) for k in range(module.num_layers)]

    def run_layer(self, k: int, x: torch.Tensor, loop: bool = False) -> torch.Tensor:
        """Layer k's state sequence (B, L, D) for its input (B, L, F or D); layered networks only.

        The time loop runs only while training with recurrent dropout (or when asked): in eval the mask is
        the identity and the fused kernel gives the same states.
        """
        module = self.stack[k]
        p = self.recurrent_dropout
        if not (loop or (self.training and p > 0)):
            return module(x)[0]
        outs = []
        for reverse in ((False, True) if self.bidirectional else (False,)):
            mask = None
            if self.training and p > 0:  # one Bernoulli mask per window, reused at every step
                mask = torch.bernoulli(x.new_full((x.shape[0], module.hidden_size), 1 - p)) / (1 - p)  # (B, H)
            seq = x.flip(1) if reverse else x
            h, _ = STEPS[self.cell](seq, *direction_weights(module, 0, reverse), mask=mask)
            outs.append(h.flip(1) if reverse else h)
        return torch.cat(outs, dim=-1)  # (B, L, D)

    def after_layer(self, k: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What layer k+1 (or the pooling) reads, from layer k's input x and state sequence y (layered only)."""
        if not self.layered:
            return y
        if hasattr(self, "norms"):
            y = self.norms[k](y)
        if self.residual and k > 0:
            y = y + x
        return self.drop(y) if k < len(self.stack) - 1 else y

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The top layer's state at every step (B, L, D)."""
        if not self.layered:
            return getattr(self, self.cell)(x)[0]
        for k in range(len(self.stack)):
            x = self.after_layer(k, x, self.run_layer(k, x))
        return x

    def summary(self, out: torch.Tensor) -> torch.Tensor:
        """(B, D): the forward state after the last row, joined by the backward state after the first."""
        if not self.bidirectional:
            return out[:, -1]
        h = out.shape[-1] // 2
        return torch.cat([out[:, -1, :h], out[:, 0, h:]], dim=-1)

    def pool(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The head's input (B, D) and the attention weights over steps (B, L), None without attention."""
        last = self.summary(out)
        if self.pooling == "last":
            return last, None
        if self.pooling == "attention_additive":
            scores = self.attn_v(torch.tanh(self.attn(out))).squeeze(-1)  # (B, L)
        else:
            scores = (out @ last.unsqueeze(-1)).squeeze(-1)  # (B, L): h_t · h_last
        weights = torch.softmax(scores.float(), dim=-1).to(out.dtype)
        return (weights.unsqueeze(-1) * out).sum(dim=1), weights  # (B, D), (B, L)

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        if self.training and self.noise_std > 0:  # augmentation: training windows only
            x = x + self.noise_std * torch.randn_like(x)
        ctx, weights = self.pool(self.encode(x))  # (B, D), (B, L) | None
        ctx = self.drop(ctx)
        # The summaries are joined after dropout (the head always sees them whole) and read the noised training
        # windows: summaries of the clean windows cost Beijing 0.05 PR-AUC (benchmarks/README.md).
        if self.head_summaries:
            ctx = torch.cat([ctx, window_summaries(x, self.head_stats).to(ctx.dtype)], dim=-1)  # (B, D + S·F)
        logits = self.head(ctx).squeeze(-1)  # (B,)
        return (logits, weights) if return_attention else logits
