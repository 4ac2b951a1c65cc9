"""Interpretability: gates recomputed from the weights match a hand step and the network's own states."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lstm_core.config import ModelConfig
from lstm_core.interpret import gate_by_step, interpret, layer_traces, sample_windows, unit_activity
from lstm_core.model import LSTMClassifier


def net_for(seed: int = 0, n_features: int = 2, **kw) -> LSTMClassifier:
    torch.manual_seed(seed)
    return LSTMClassifier(n_features, ModelConfig(**{"hidden": 3, "layers": 1, "dropout": 0.0, **kw})).eval()


def windows(n: int = 5, length: int = 4, f: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, length, f, generator=torch.Generator().manual_seed(seed))  # (n, L, F)


def test_forget_gate_matches_a_hand_written_lstm_step() -> None:
    net, x = net_for(), windows()
    lstm, hid = net.lstm, 3
    w_ih, w_hh, b_ih, b_hh = lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
    h = c = torch.zeros(len(x), hid)
    expected_f, expected_h = [], []
    with torch.no_grad():
        for t in range(x.shape[1]):
            # nn.LSTM's documented equations, rows of the weights ordered i, f, g, o
            pre = x[:, t] @ w_ih.T + b_ih + h @ w_hh.T + b_hh
            i = torch.sigmoid(pre[:, :hid])
            f = torch.sigmoid(pre[:, hid:2 * hid])
            g = torch.tanh(pre[:, 2 * hid:3 * hid])
            o = torch.sigmoid(pre[:, 3 * hid:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            expected_f.append(f)
            expected_h.append(h)
    traces, top = layer_traces(net, x)
    assert [tr.name for tr in traces] == ["layer 1"]
    np.testing.assert_allclose(traces[0].gate, torch.stack(expected_f, 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(traces[0].states, torch.stack(expected_h, 1).numpy(), atol=1e-6)
    # at the first step h = 0, so f_0 = σ(W_if x_0 + b_if + b_hf) alone
    with torch.no_grad():
        f0 = torch.sigmoid(x[:, 0] @ w_ih[hid:2 * hid].T + b_ih[hid:2 * hid] + b_hh[hid:2 * hid])
    np.testing.assert_allclose(traces[0].gate[:, 0], f0.numpy(), atol=1e-6)
    assert np.all((traces[0].gate >= 0) & (traces[0].gate <= 1))


def test_forget_gate_of_a_blank_network_is_sigmoid_of_the_forget_bias() -> None:
    net = net_for(forget_bias=2.0)
    with torch.no_grad():
        for p in (net.lstm.weight_ih_l0, net.lstm.weight_hh_l0):
            p.zero_()
    traces, _ = layer_traces(net, windows())
    # every input is ignored: f = σ(2.0 + 0) = 0.8808 at every step, window and unit
    np.testing.assert_allclose(traces[0].gate, 1 / (1 + math.exp(-2.0)), atol=1e-6)


@pytest.mark.parametrize("kw", [
    {"layers": 2},
    {"layers": 2, "bidirectional": True},
    {"layers": 2, "cell": "gru"},
    {"layers": 3, "cell": "gru", "bidirectional": True},
    {"layers": 3, "layer_norm": True, "residual": True},
    {"layers": 2, "recurrent_dropout": 0.3, "bidirectional": True},
], ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_layer_by_layer_states_reproduce_the_network(kw: dict) -> None:
    net, x = net_for(seed=2, **kw), windows(6, 7)
    traces, top = layer_traces(net, x)
    dirs = 2 if net.bidirectional else 1
    assert len(traces) == kw["layers"] * dirs
    with torch.no_grad():
        np.testing.assert_allclose(top.numpy(), net.encode(x).numpy(), atol=1e-5)
        if not net.layered:  # the fused module's last layer: its states are the traced top layer's, joined
            fused = getattr(net, net.cell)(x)[0].numpy()
            np.testing.assert_allclose(np.concatenate([t.states for t in traces[-dirs:]], -1), fused, atol=1e-5)
    for tr in traces:
        assert tr.gate.shape == tr.states.shape == (6, 7, 3)
        assert np.all((tr.gate >= 0) & (tr.gate <= 1))


def test_gate_profile_splits_by_target_and_dead_units_are_counted() -> None:
    net, x = net_for(hidden=4), windows(6, 5)
    with torch.no_grad():
        net.lstm.bias_ih_l0[3 * 4 + 1] = -1e4  # unit 1's output gate is shut: h = o·tanh(c) = 0 always
    y = np.array([1, 0, 0, 1, 0, 0])
    traces, _ = layer_traces(net, x)
    profile = gate_by_step(traces, y)["layer 1"]
    np.testing.assert_allclose(profile["positive"], traces[0].gate[[0, 3]].mean(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_allclose(profile["negative"], traces[0].gate[[1, 2, 4, 5]].mean(axis=(0, 2)), rtol=1e-6)
    activity, dead = unit_activity(traces)
    assert dead == {"layer 1": 1}
    assert activity["layer 1"][1] < 1e-3 and np.all(np.delete(activity["layer 1"], 1) > 1e-3)
    assert gate_by_step(traces, np.zeros(6, int))["layer 1"].keys() == {"negative"}


def test_attention_weights_of_sample_windows() -> None:
    x, y = windows(10, 6), np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0])
    assert interpret(net_for(), x.numpy(), y).attention is None
    out = interpret(net_for(pooling="attention_dot"), x.numpy(), y, samples=4)
    assert out.attention.shape == (4, 6) and out.gate_name == "forget"
    np.testing.assert_allclose(out.attention.sum(axis=1), 1.0, rtol=1e-5)
    assert sorted(out.attention_y) == [0, 0, 1, 1]  # half positive
    assert interpret(net_for(cell="gru"), x.numpy(), y).gate_name == "update"


def test_sample_windows_takes_what_there_is() -> None:
    y = np.array([1, 0, 0, 0, 0, 0])
    picked = sample_windows(y, 4)
    assert len(picked) == 4 and y[picked].sum() == 1 and list(picked) == sorted(picked)
    assert sorted(sample_windows(np.array([1, 1, 1, 0]), 4)) == [0, 1, 2, 3]  # too few negatives: more positives
    with pytest.raises(ValueError, match="3 windows but 2 targets"):
        interpret(net_for(), windows(3).numpy(), np.array([0, 1]))
