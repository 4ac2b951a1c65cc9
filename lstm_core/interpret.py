"""What a trained network does inside: gate activations over time, hidden-unit activity, attention weights.

Pure numpy/torch. The recurrences are recomputed from the network's own weights with nn.LSTM's (or nn.GRU's)
equations, layer by layer, so every gate value can be checked by hand; the layers are joined exactly as the
network joins them (layer norm, residual), which makes the top layer's states equal the network's own.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lstm_core.model import STEPS, LSTMClassifier, direction_weights

# The gate each cell carries its state through: LSTM's forget gate, GRU's update gate (share of h_{t-1} kept).
GATE_NAME = {"lstm": "forget", "gru": "update"}


@dataclass
class LayerTrace:
    """One layer (and direction) over a batch of windows."""

    name: str  # "layer 1", or "layer 1 backward" for a bidirectional network's reverse direction
    gate: np.ndarray  # (n, L, H) forget gate (LSTM) or update gate (GRU), in [0, 1]
    states: np.ndarray  # (n, L, H) hidden state h_t; index t is row t of the window in both directions


@dataclass
class Interpretation:
    """Summaries of a network on a set of windows, small enough to log."""

    gate_name: str
    gate_by_step: dict[str, dict[str, np.ndarray]]  # layer -> "positive" | "negative" -> (L,) mean gate per step
    activity: dict[str, np.ndarray]  # layer -> (H,) mean |h| per unit over windows and steps
    dead: dict[str, int]  # layer -> units whose mean |h| stays below the threshold on every window
    attention: np.ndarray | None  # (k, L) attention weights of sample windows, None without attention
    attention_y: np.ndarray | None  # (k,) their targets


@torch.no_grad()
def layer_traces(net: LSTMClassifier, x: torch.Tensor) -> tuple[list[LayerTrace], torch.Tensor]:
    """Every layer's gate and states for windows x (B, L, F), and the top layer's output (B, L, D) in eval mode."""
    net.eval()
    traces, inp = [], x
    for k, (module, layer) in enumerate(net.recurrent_layers()):
        outs = []
        for reverse in ((False, True) if net.bidirectional else (False,)):
            seq = inp.flip(1) if reverse else inp
            h, g = STEPS[net.cell](seq, *direction_weights(module, layer, reverse), keep_gates=True)
            h, g = (h.flip(1), g.flip(1)) if reverse else (h, g)
            traces.append(LayerTrace(f"layer {k + 1}{' backward' if reverse else ''}", g.numpy(), h.numpy()))
            outs.append(h)
        inp = net.after_layer(k, inp, torch.cat(outs, dim=-1))  # (B, L, D)
    return traces, inp


def gate_by_step(traces: list[LayerTrace], y: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Mean gate value per time step (over windows and units), split by the windows' targets."""
    out = {}
    for tr in traces:
        out[tr.name] = {cls: tr.gate[y == v].mean(axis=(0, 2)) for cls, v in (("positive", 1), ("negative", 0))
                        if np.any(y == v)}  # (L,)
    return out


def unit_activity(traces: list[LayerTrace], threshold: float = 1e-3) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Mean |h| per unit, and how many units are dead: below ``threshold`` on every window."""
    activity, dead = {}, {}
    for tr in traces:
        per_window = np.abs(tr.states).mean(axis=1)  # (n, H)
        activity[tr.name] = per_window.mean(axis=0)  # (H,)
        dead[tr.name] = int(np.all(per_window < threshold, axis=0).sum())
    return activity, dead


@torch.no_grad()
def attention_weights(net: LSTMClassifier, x: torch.Tensor) -> np.ndarray | None:
    """Attention weights (B, L) over each window's steps, or None when the network pools the last state."""
    net.eval()
    _, weights = net(x, return_attention=True)
    return None if weights is None else weights.float().numpy()


def sample_windows(y: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Up to k positions, half positive where there are enough, in ascending order."""
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_pos = min(len(pos), k // 2 if len(neg) >= k - k // 2 else k - len(neg))
    picked = np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, min(len(neg), k - n_pos),
                                                                                replace=False)])
    return np.sort(picked)


def interpret(net: LSTMClassifier, x: np.ndarray, y: np.ndarray, samples: int = 8, dead_threshold: float = 1e-3,
              seed: int = 0) -> Interpretation:
    """Gate profiles, unit activity and sample attention of ``net`` on scaled windows x (n, L, F)."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} windows but {len(y)} targets")
    xt = torch.as_tensor(np.asarray(x, np.float32))
    traces, _ = layer_traces(net.cpu(), xt)
    activity, dead = unit_activity(traces, dead_threshold)
    pick = sample_windows(np.asarray(y), samples, seed)
    weights = attention_weights(net, xt[pick])
    return Interpretation(GATE_NAME[net.cell], gate_by_step(traces, np.asarray(y)), activity, dead, weights,
                          None if weights is None else np.asarray(y)[pick])
