"""The training loop on tiny planted data: it learns, it is reproducible, it stops early, it weights positives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score

from lstm_core.config import ModelConfig, TrainConfig
from lstm_core.model import LSTMClassifier
from lstm_core.train import LSTMWindowModel, fit_lstm, resolve_device, seed_everything
from lstm_core.windows import WindowSet

# the loop's mechanics, from PyTorch's initialisation (the logistic start has tests of its own below)
TINY = ModelConfig(hidden=8, layers=1, dropout=0.0, augment_noise_std=0.0, head_init="random")


def planted(n: int, seed: int, length: int = 8) -> WindowSet:
    """Noise windows (n, L, 2); positives (~25 %) carry a +2.5 bump in the last 3 steps of feature 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, 2)).astype(np.float32)
    y = (rng.random(n) < 0.25).astype(np.int8)
    x[y == 1, -3:, 0] += 2.5
    return WindowSet.from_dense(x, y)


def fast(**kw) -> TrainConfig:
    """One evaluation per epoch, no step floor, constant rate, raw weights, unweighted loss: the plainest loop."""
    base = {"epochs": 6, "batch_size": 64, "lr": 1e-2, "patience": 20, "device": "cpu", "seed": 0,
            "min_steps": 0, "schedule": "constant", "ema_decay": None, "loss_weight": "none"}
    merged = {**base, **kw}
    merged.setdefault("evaluations", merged["epochs"])
    return TrainConfig(**merged)


def test_lstm_learns_a_planted_pattern() -> None:
    train, val, test = planted(200, 0), planted(80, 1), planted(200, 2)
    model = LSTMWindowModel(TINY, fast()).fit(train, val)
    proba = model.predict_proba(test)
    assert proba.shape == (200,) and proba.dtype == np.float64
    assert np.all((proba >= 0) & (proba <= 1))
    # the prior rate is ~0.25; a model that reads the last steps separates the classes
    assert average_precision_score(test.y, proba) > 0.9
    assert model.result is not None and 1 <= model.result.best_epoch <= 6
    assert model.result.best_val_pr_auc > 0.9


def test_same_seed_same_history_and_weights() -> None:
    train, val = planted(96, 3), planted(40, 4)
    cfg = ModelConfig(hidden=8, layers=2, dropout=0.2)  # two layers with dropout: the dropout RNG is seeded too
    seen: list[dict] = []
    a = fit_lstm(train, val, cfg, fast(epochs=3, seed=7), on_epoch=seen.append)
    b = fit_lstm(train, val, cfg, fast(epochs=3, seed=7))
    c = fit_lstm(train, val, cfg, fast(epochs=3, seed=8))
    assert a.history == b.history and len(a.history) == 4  # the logistic start (evaluation 0), then 3 epochs
    assert seen == a.history  # the callback got every evaluation's row
    assert set(a.history[0]) == {"epoch", "step", "lr", "val_loss", "val_pr_auc"} and a.history[0]["step"] == 0
    assert set(a.history[1]) == {"epoch", "step", "loss", "lr", "val_loss", "val_pr_auc"}
    assert a.state_dict.keys() == b.state_dict.keys()
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k]), k
    assert any(not torch.equal(a.state_dict[k], c.state_dict[k]) for k in a.state_dict)
    assert a.history != c.history


def test_early_stopping_stops_at_patience_and_keeps_the_best_epoch() -> None:
    train = planted(64, 5)
    # two identical validation windows, one positive: every model scores them equally, so the validation
    # PR-AUC is 0.5 (one threshold, precision 1/2, recall 1) every epoch. Epoch 1 is the best; with
    # patience 2, epochs 2 and 3 are stale and training stops after epoch 3 of 20.
    val = WindowSet.from_dense(np.zeros((2, 8, 2), np.float32), y=[0, 1])
    res = fit_lstm(train, val, TINY, fast(epochs=20, patience=2, select_on="val_pr_auc"))
    assert [h["epoch"] for h in res.history] == [1, 2, 3]
    assert [h["val_pr_auc"] for h in res.history] == [0.5, 0.5, 0.5]
    assert res.best_epoch == 1 and res.best_val_pr_auc == 0.5
    # the returned weights are epoch 1's, not epoch 3's: the same as a 1-epoch run with the same seed
    one = fit_lstm(train, val, TINY, fast(epochs=1, select_on="val_pr_auc"))
    for k in res.state_dict:
        assert torch.equal(res.state_dict[k], one.state_dict[k]), k


def test_without_validation_it_trains_exactly_the_given_epochs() -> None:
    res = fit_lstm(planted(64, 6), None, TINY, fast(epochs=20, patience=1), epochs=4)
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]  # patience does not apply: no validation
    assert res.best_epoch == 4 and "val_loss" not in res.history[0]


def test_pos_weight_multiplies_the_positive_terms_of_the_loss() -> None:
    train = planted(40, 7)
    y = torch.as_tensor(train.y, dtype=torch.float32)
    # the first epoch's loss with one batch of all windows is the loss at initialisation. Rebuild the
    # initial network exactly as fit_lstm does (seed, then construct) and compute BCE by hand:
    #   loss = mean( w·y·softplus(−z) + (1−y)·softplus(z) )
    seed_everything(0)
    net = LSTMClassifier(2, TINY)
    with torch.no_grad():
        z = net(torch.as_tensor(train.gather()))
    expected = {w: float(torch.mean(w * y * torch.nn.functional.softplus(-z)
                                    + (1 - y) * torch.nn.functional.softplus(z))) for w in (1.0, 4.0)}
    cfg = fast(epochs=1, batch_size=len(train))
    plain = fit_lstm(train, None, TINY, cfg).history[0]["loss"]
    weighted = fit_lstm(train, None, TINY, cfg, pos_weight=4.0).history[0]["loss"]
    assert plain == pytest.approx(expected[1.0], rel=1e-5)
    assert weighted == pytest.approx(expected[4.0], rel=1e-5)
    assert weighted > plain * 1.2  # 25 % positives weighted 4× move the loss a lot


def test_forget_gate_bias_initialisation() -> None:
    h = 8
    net = LSTMClassifier(3, ModelConfig(hidden=h, layers=2, forget_bias=1.5))
    for layer in range(2):
        b_ih = getattr(net.lstm, f"bias_ih_l{layer}").detach()
        b_hh = getattr(net.lstm, f"bias_hh_l{layer}").detach()
        # gates are ordered (input, forget, cell, output): the forget slice is [H:2H]
        assert torch.all(b_ih[h:2 * h] == 1.5)
        assert torch.all(b_hh[h:2 * h] == 0.0)
        assert not torch.all(b_ih[:h] == 1.5)  # the other gates keep PyTorch's random init
        assert torch.all((b_ih + b_hh)[h:2 * h] == 1.5)  # the effective forget bias


def test_predict_before_fit_raises() -> None:
    with pytest.raises(RuntimeError, match="fit the model before predict_proba"):
        LSTMWindowModel(TINY, fast()).predict_proba(planted(4, 0))


def test_cuda_without_cuda_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="train.device=cuda but no CUDA device is available"):
        resolve_device("cuda")
    with pytest.raises(RuntimeError, match="no CUDA device"):
        fit_lstm(planted(8, 0), None, TINY, fast(device="cuda"))
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_training_matches_cpu_loosely() -> None:
    train, val, test = planted(200, 0), planted(80, 1), planted(200, 2)
    assert resolve_device("auto") == torch.device("cuda")
    cpu = LSTMWindowModel(TINY, fast()).fit(train, val)
    gpu = LSTMWindowModel(TINY, fast(device="cuda")).fit(train, val)
    assert gpu.result is not None and gpu.result.device.startswith("cuda")
    ap_cpu = average_precision_score(test.y, cpu.predict_proba(test))
    ap_gpu = average_precision_score(test.y, gpu.predict_proba(test))
    assert ap_gpu > 0.9 and abs(ap_gpu - ap_cpu) < 0.05


def test_step_budget_is_epochs_times_steps_per_epoch_raised_to_the_floor() -> None:
    from lstm_core.train import step_budget

    # 1000 windows at batch 256: ceil(1000/256) = 4 steps per pass
    assert step_budget(1000, fast(epochs=2, batch_size=256, min_steps=0)) == 8
    assert step_budget(1000, fast(epochs=2, batch_size=256, min_steps=100)) == 100  # small data: the floor
    assert step_budget(1000, fast(epochs=50, batch_size=256, min_steps=100)) == 200  # enough passes: no floor
    assert step_budget(1000, fast(epochs=2, batch_size=256, min_steps=100), epochs=3) == 12  # exactly as asked


def test_warmup_then_cosine_schedule_by_hand() -> None:
    from lstm_core.train import lr_factor

    cfg = fast(schedule="cosine", warmup_fraction=0.1)  # 100 steps: 10 of warmup, then 90 of cosine
    assert lr_factor(0, 100, cfg) == pytest.approx(0.1)  # (0 + 1) / 10
    assert lr_factor(4, 100, cfg) == pytest.approx(0.5)
    assert lr_factor(9, 100, cfg) == pytest.approx(1.0)
    assert lr_factor(10, 100, cfg) == pytest.approx(1.0)  # cos(0)
    assert lr_factor(55, 100, cfg) == pytest.approx(0.5)  # half way through the cosine: (1 + cos(π/2)) / 2
    assert lr_factor(100, 100, cfg) == pytest.approx(0.0)
    assert lr_factor(55, 100, fast(schedule="constant")) == 1.0


def test_the_loop_takes_the_step_budget_and_follows_the_schedule() -> None:
    # 64 windows at batch 16: 4 steps per pass; epochs 2 → 8 steps, raised to the floor of 20.
    # evaluations 5 → one history row every ceil(20/5) = 4 steps.
    cfg = fast(epochs=2, batch_size=16, min_steps=20, evaluations=5, schedule="cosine", warmup_fraction=0.1,
               lr=1e-2)
    res = fit_lstm(planted(64, 6), None, TINY, cfg)
    assert [h["step"] for h in res.history] == [4, 8, 12, 16, 20]
    assert res.schedule_steps == 20 and res.best_step == 20
    # the rate a row reports is the one the next step would use: lr · factor(step); warmup = int(0.1·20) = 2
    from lstm_core.train import lr_factor

    for row in res.history:
        assert row["lr"] == pytest.approx(1e-2 * lr_factor(row["step"], 20, cfg))
    assert res.history[-1]["lr"] == pytest.approx(0.0)
    # a refit told to stop earlier on the same schedule stops there
    short = fit_lstm(planted(64, 6), None, TINY, cfg, steps=10, schedule_steps=20)
    assert [h["step"] for h in short.history] == [4, 8, 10] and short.history[1]["lr"] == res.history[1]["lr"]


def test_early_stopping_counts_evaluations_and_plateau_patience_must_be_shorter() -> None:
    train = planted(64, 5)
    val = WindowSet.from_dense(np.zeros((2, 8, 2), np.float32), y=[0, 1])  # PR-AUC 0.5 at every evaluation
    # 64 windows at batch 16, 2 epochs → 8 steps, 8 evaluations (one per step); patience 3 on the smoothed
    # PR-AUC: evaluation 1 is the best, 2, 3, 4 are stale, so the run ends after step 4 of 8.
    res = fit_lstm(train, val, TINY, fast(epochs=2, batch_size=16, evaluations=8, patience=3,
                                          select_on="val_pr_auc"))
    assert [h["step"] for h in res.history] == [1, 2, 3, 4] and res.best_step == 1
    with pytest.raises(ValueError, match="lr_patience must be below train.patience"):
        TrainConfig(schedule="plateau", patience=3, lr_patience=3)


def test_validation_loss_selects_the_weights_with_the_lowest_loss() -> None:
    train, val = planted(96, 3), planted(40, 4)
    res = fit_lstm(train, val, TINY, fast(epochs=8, select_on="val_loss"))
    losses = [h["val_loss"] for h in res.history]
    assert res.best_epoch == 1 + int(np.argmin(losses))


def test_balanced_loss_weight_is_negatives_over_positives() -> None:
    from lstm_core.train import balanced_pos_weight

    assert balanced_pos_weight(np.array([0, 0, 0, 1])) == 3.0
    assert balanced_pos_weight(np.array([0, 0])) is None
    train = planted(40, 7)
    n_pos = int(train.y.sum())
    cfg = fast(epochs=1, batch_size=len(train))
    balanced = fit_lstm(train, None, TINY, cfg.model_copy(update={"loss_weight": "balanced"}))
    explicit = fit_lstm(train, None, TINY, cfg, pos_weight=(len(train) - n_pos) / n_pos)
    assert balanced.pos_weight == explicit.pos_weight
    assert balanced.history[0]["loss"] == explicit.history[0]["loss"]
    # the resampler's weight (class_weight) wins over the config's
    assert fit_lstm(train, None, TINY, cfg.model_copy(update={"loss_weight": "balanced"}), pos_weight=2.0).pos_weight == 2.0


def test_weight_averaging_keeps_the_exponential_average_of_the_weights() -> None:
    # one window, batch 1, 3 steps: EMA with decay d after steps w1, w2, w3 (torch's EMA starts at w1):
    #   e1 = w1, e2 = d·e1 + (1−d)·w2, e3 = d·e2 + (1−d)·w3
    train = planted(1, 2)
    d = 0.5
    raw = [fit_lstm(train, None, TINY, fast(epochs=k, batch_size=1, evaluations=1)).state_dict for k in (1, 2, 3)]
    ema = fit_lstm(train, None, TINY, fast(epochs=3, batch_size=1, evaluations=1, ema_decay=d)).state_dict
    for k in ema:
        e = raw[0][k]
        for w in raw[1:]:
            e = d * e + (1 - d) * w[k]
        torch.testing.assert_close(ema[k], e, rtol=1e-5, atol=1e-6)


def test_evaluation_runs_in_fp32_even_inside_an_autocast_region() -> None:
    from lstm_core.train import DeviceWindows, predict_logits

    ws = planted(32, 9)
    seed_everything(0)
    net = LSTMClassifier(2, TINY).eval()
    data = DeviceWindows(ws, torch.device("cpu"))
    plain = predict_logits(net, data)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # a caller's autocast must not reach scoring
        inside = predict_logits(net, data)
        assert net.head(torch.zeros(1, net.head.in_features)).dtype == torch.bfloat16  # autocast is really on
    assert plain.dtype == inside.dtype == torch.float32
    assert torch.equal(plain, inside)
