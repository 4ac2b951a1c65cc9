"""The fast training path (device-resident rows, windows gathered by index) against a straightforward reference.

The reference is the textbook loop: materialise every window with ``np.stack``, slice batches out of that
dense array in the same shuffled order, and step the same model. Both must end with the same weights and the
same scores, up to floating-point noise: the fast path may change speed and memory, never results.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lstm_core.config import ModelConfig, TrainConfig
from lstm_core.model import LSTMClassifier
from lstm_core.train import fit_lstm, predict_proba, seed_everything
from lstm_core.windows import WindowSet

LENGTH = 6


def telemetry(rows: int = 150, features: int = 3, seed: int = 0) -> WindowSet:
    """Windows over one shared row array (so windows overlap), like a real series; ~20% positive."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float32)
    y = (rng.random(rows) < 0.2).astype(np.int8)
    x[np.flatnonzero(y), 0] += 2.0
    ends = np.arange(LENGTH - 1, rows, dtype=np.int64)
    return WindowSet(x, ends, LENGTH, y[ends], np.zeros(len(ends), np.int8), np.zeros(len(ends), bool))


def reference_fit(ws: WindowSet, model_cfg: ModelConfig, cfg: TrainConfig) -> nn.Module:
    """The textbook loop over a dense (n, L, F) copy, in the fast path's shuffled order."""
    dense = np.stack([ws.rows[e - LENGTH + 1:e + 1] for e in ws.ends])  # (n, L, F): L copies of the rows
    labels = torch.as_tensor(ws.y, dtype=torch.float32)
    seed_everything(cfg.seed)
    model = LSTMClassifier(ws.n_features, model_cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(cfg.seed)
    for _ in range(cfg.epochs):
        model.train()
        order = torch.randperm(len(dense), generator=gen)
        for start in range(0, len(dense), cfg.batch_size):
            idx = order[start:start + cfg.batch_size]
            loss = loss_fn(model(torch.from_numpy(dense[idx.numpy()])), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
            opt.step()
    return model.eval()


def test_fast_path_matches_the_dense_reference_loop() -> None:
    ws = telemetry()
    # dropout: the RNG stream must line up too; PyTorch's initialisation, as the reference loop has no logistic start
    model_cfg = ModelConfig(hidden=8, layers=2, dropout=0.2, head_init="random")
    cfg = TrainConfig(epochs=3, batch_size=32, lr=5e-3, device="cpu", seed=3, patience=10,
                      schedule="constant", ema_decay=None, loss_weight="none", min_steps=0, evaluations=3)
    # the reference loop: constant rate, raw weights, unweighted loss

    fast = fit_lstm(ws, None, model_cfg, cfg, epochs=cfg.epochs)
    ref = reference_fit(ws, model_cfg, cfg)

    ref_state = ref.state_dict()
    assert fast.state_dict.keys() == ref_state.keys()
    for name, value in fast.state_dict.items():
        torch.testing.assert_close(value, ref_state[name], rtol=1e-5, atol=1e-6, msg=name)

    net = LSTMClassifier(ws.n_features, model_cfg)
    net.load_state_dict(fast.state_dict)
    dense = torch.from_numpy(np.stack([ws.rows[e - LENGTH + 1:e + 1] for e in ws.ends]))
    with torch.no_grad():
        expected = torch.sigmoid(ref(dense)).numpy()
    # predict_proba gathers in large batches under inference_mode: same scores as a plain forward pass
    np.testing.assert_allclose(predict_proba(net, ws, device="cpu", batch_size=17), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the streamed path pins host memory")
def test_streaming_through_pinned_memory_gives_the_resident_batches() -> None:
    from lstm_core.train import DeviceWindows

    ws = telemetry()
    device = torch.device("cuda")
    resident, streamed = DeviceWindows(ws, device), DeviceWindows(ws, device, device_fraction=0.0)
    assert not resident.streamed and streamed.streamed and streamed.rows.is_pinned()
    idx = torch.tensor([0, 5, 17, len(ws) - 1], device=device)
    for a, b in zip(resident.batch(idx), streamed.batch(idx), strict=True):
        assert b.device.type == "cuda"
        torch.testing.assert_close(a, b)
