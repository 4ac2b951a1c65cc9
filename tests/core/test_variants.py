"""Every network variant trains, is stored as the registry and the workspace store it (safetensors + JSON)
and scores the same after loading."""
from __future__ import annotations

import json
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.overrides import TorchFunctionMode

from lstm_core.config import ModelConfig, PipelineConfig, TrainConfig
from lstm_core.model import LSTMClassifier, gru_steps, lstm_steps
from lstm_core.scoring import RareEventScorer, ScoringSpec, rebuild_network, score_frame
from lstm_core.train import build_model, fit_lstm, predict_proba
from lstm_core.windows import WindowSet
from lstm_pipeline import registry_model, safe_files

BASE = {"hidden": 6, "layers": 2, "dropout": 0.1, "head_summaries": False, "augment_noise_std": 0.0}
VARIANTS = [
    {},
    {"cell": "gru"},
    {"pooling": "attention_additive"},
    {"pooling": "attention_dot"},
    {"cell": "gru", "pooling": "attention_additive"},
    {"cell": "gru", "pooling": "attention_dot"},
    {"bidirectional": True},
    {"bidirectional": True, "cell": "gru", "pooling": "attention_dot"},
    {"recurrent_dropout": 0.3},
    {"recurrent_dropout": 0.3, "cell": "gru", "bidirectional": True},
    {"layer_norm": True},
    {"residual": True, "layers": 3},
    {"augment_noise_std": 0.5},
    {"head_summaries": True},
    {"head_summaries": True, "pooling": "attention_additive", "bidirectional": True},
]


def name(kw: dict) -> str:
    return "-".join(f"{k}={v}" for k, v in kw.items()) or "default"


def planted(n: int, seed: int, length: int = 6) -> WindowSet:
    """Noise windows (n, L, 2); positives (~30 %) carry a +2 bump in the last 2 steps of feature 0."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, 2)).astype(np.float32)
    y = (rng.random(n) < 0.3).astype(np.int8)
    x[y == 1, -2:, 0] += 2.0
    return WindowSet.from_dense(x, y)


FAST = TrainConfig(epochs=2, batch_size=32, lr=1e-2, patience=5, device="cpu", seed=0, min_steps=0, evaluations=2)
SPEC = ScoringSpec("time", None, ["a", "b"], 6, None, 0.5, "label", 0)


@pytest.mark.parametrize("kw", VARIANTS, ids=name)
def test_variant_trains_round_trips_and_scores_identically(kw: dict) -> None:
    cfg = ModelConfig(**{**BASE, **kw})
    train, val, test = planted(64, 0), planted(32, 1), planted(24, 2)
    result = fit_lstm(train, val, cfg, FAST)
    trained = [row for row in result.history if row["step"] > 0]  # evaluation 0: the logistic start, if any
    assert len(trained) == 2 and np.isfinite(trained[-1]["loss"])
    assert (result.history[0]["step"] == 0) == cfg.head_summaries
    x = torch.as_tensor(test.gather())  # (B, L, F)
    scorer = RareEventScorer(rebuild_network(result.state_dict, 2, cfg), np.zeros(2), np.ones(2), SPEC)
    with torch.no_grad():
        before = scorer(x)
    # the registry stores safetensors weights + a JSON spec; the workspace one safetensors file of both
    with tempfile.TemporaryDirectory() as tmp:
        registered = registry_model.load(registry_model.save(scorer, Path(tmp) / "scorer", {}))
        (Path(tmp) / "w").write_bytes(safe_files.tree_bytes(safe_files.scorer_tree(scorer)))
        stored = safe_files.scorer_from_tree(safe_files.load_tree(Path(tmp) / "w"))
    for loaded in (registered, stored):
        with torch.no_grad():
            assert torch.equal(loaded(x), before)
    # pipeline_config.json beside the model rebuilds the same network from its state dict
    logged = json.loads(json.dumps(PipelineConfig(model=cfg).model_dump(mode="json")))
    rebuilt = rebuild_network(scorer.network.state_dict(), 2, ModelConfig.model_validate(logged["model"]))
    with torch.no_grad():
        assert torch.equal(torch.sigmoid(rebuilt(x)), before)
    np.testing.assert_allclose(predict_proba(build_model(result, cfg), test, "cpu"), before.numpy(), rtol=1e-6)


def test_variants_build_what_they_name() -> None:
    def net(**kw) -> LSTMClassifier:
        return LSTMClassifier(3, ModelConfig(**{**BASE, **kw}))

    assert isinstance(net().lstm, torch.nn.LSTM) and not net().layered
    assert isinstance(net(cell="gru").gru, torch.nn.GRU) and not hasattr(net(cell="gru"), "lstm")
    assert net(bidirectional=True).head.in_features == 12  # both directions' states
    assert {"attn.weight", "attn.bias", "attn_v.weight"} <= net(pooling="attention_additive").state_dict().keys()
    assert not any(k.startswith("attn") for k in net(pooling="attention_dot").state_dict())
    assert net(layer_norm=True).layered and len(net(layer_norm=True).norms) == 2
    assert net(residual=True).layered and net(recurrent_dropout=0.1).layered
    # forget bias on every LSTM layer and direction of the layered layout; a GRU leaves its biases alone
    stacked = net(recurrent_dropout=0.1, bidirectional=True, forget_bias=2.0).stack
    for module in stacked:
        for sfx in ("l0", "l0_reverse"):
            assert torch.all(getattr(module, f"bias_ih_{sfx}")[6:12] == 2.0)
            assert torch.all(getattr(module, f"bias_hh_{sfx}")[6:12] == 0.0)
    assert not torch.any(net(cell="gru", forget_bias=2.0).gru.bias_ih_l0 == 2.0)


def test_default_network_keeps_its_parameter_names() -> None:
    keys = LSTMClassifier(3, ModelConfig(hidden=4, layers=2)).state_dict().keys()
    assert set(keys) == {f"lstm.{w}_l{k}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
                         for k in (0, 1)} | {"head.weight", "head.bias"}


def test_a_network_pickled_before_the_options_existed_still_scores() -> None:
    torch.manual_seed(0)
    net = LSTMClassifier(2, ModelConfig(hidden=4, layers=1, dropout=0.0)).eval()
    x = torch.randn(5, 6, 2)
    with torch.no_grad():
        expected = net(x)
    for attr in ("cell", "pooling", "bidirectional", "layered", "residual", "recurrent_dropout", "noise_std"):
        del net.__dict__[attr]  # what an older pickle holds
    with torch.no_grad():
        assert torch.equal(pickle.loads(pickle.dumps(net))(x), expected)


def test_bidirectional_is_accepted_in_both_modes() -> None:
    for data in ({"event_col": "failure", "horizon": 3}, {"label_col": "label", "label_lookahead": 5}):
        assert PipelineConfig(data=data, model={"bidirectional": True}).model.bidirectional


def test_bidirectional_never_reads_the_rows_that_decide_an_event_target() -> None:
    # Event mode, horizon 3: the window ending at t reads rows t-5 … t; rows t+1 … t+3 decide its target.
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"time": np.arange(40), "a": rng.normal(size=40), "b": rng.normal(size=40)})
    torch.manual_seed(0)
    net = LSTMClassifier(2, ModelConfig(hidden=4, layers=2, dropout=0.0, bidirectional=True)).eval()
    scorer = RareEventScorer(net, np.zeros(2), np.ones(2),
                             ScoringSpec("time", None, ["a", "b"], 6, None, 0.5, "event", 3))
    before = score_frame(scorer, df).set_index("time")["score"]
    later = df.copy()
    later.loc[later["time"] > 20, ["a", "b"]] += 5.0  # every row after t = 20, the target's rows included
    after = score_frame(scorer, later).set_index("time")["score"]
    pd.testing.assert_series_equal(after.loc[:20], before.loc[:20])  # windows ending at t ≤ 20: unchanged
    assert (after.loc[21:] != before.loc[21:]).all()  # the backward pass does read every row inside a window
    first = df.copy()
    first.loc[first["time"] == 15, "a"] += 5.0  # the first row of the window ending at 20
    assert score_frame(scorer, first).set_index("time")["score"].loc[20] != before.loc[20]


class _Matmuls(TorchFunctionMode):
    """Records the left operand of every (B, H) @ W product: the state entering the recurrence."""

    def __init__(self) -> None:
        super().__init__()
        self.left: list[torch.Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("matmul", "__matmul__") and args[0].dim() == 2:
            self.left.append(args[0].detach().clone())
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_dropout_uses_one_mask_for_every_time_step(cell: str) -> None:
    p, length = 0.5, 7
    torch.manual_seed(0)
    net = LSTMClassifier(2, ModelConfig(hidden=8, layers=1, dropout=0.0, cell=cell, recurrent_dropout=p)).train()
    x = torch.randn(16, length, 2)
    with _Matmuls() as seen, torch.no_grad():
        net.run_layer(0, x)  # training mode: the time loop with a fresh mask
    # one product per step reads the masked h_{t-1}; at t = 0 that is h_0 = 0
    assert len(seen.left) == length and torch.all(seen.left[0] == 0)
    kept = seen.left[1] != 0  # (B, H): the units this window keeps
    assert 0.2 < kept.float().mean() < 0.8  # about half dropped
    assert not torch.equal(kept[0], kept[1])  # each window draws its own mask
    for t in range(2, length):
        assert torch.equal(seen.left[t] != 0, kept), f"step {t} dropped other units"
    with _Matmuls() as again, torch.no_grad():
        net.run_layer(0, x)
    assert not torch.equal(again.left[1] != 0, kept)  # a new mask for the next batch


def test_recurrent_dropout_mask_scales_the_state_it_keeps() -> None:
    torch.manual_seed(1)
    hid, p = 5, 0.4
    x = torch.randn(3, 4, 2)
    mask = torch.bernoulli(torch.full((3, hid), 1 - p)) / (1 - p)
    for steps, gates in ((lstm_steps, 4), (gru_steps, 3)):
        w_ih, w_hh = torch.randn(gates * hid, 2), torch.randn(gates * hid, hid)
        b_ih, b_hh = torch.randn(gates * hid), torch.randn(gates * hid)
        with _Matmuls() as seen:
            states, _ = steps(x, w_ih, w_hh, b_ih, b_hh, mask=mask)
        # the product at step t reads h_{t-1} · mask with the very same mask at every step
        for t in range(1, 4):
            torch.testing.assert_close(seen.left[t], states[:, t - 1] * mask)
        plain, _ = steps(x, w_ih, w_hh, b_ih, b_hh)
        assert not torch.allclose(states, plain)  # the mask matters


@pytest.mark.parametrize("kw", [{"cell": "lstm"}, {"cell": "gru", "bidirectional": True}], ids=name)
def test_the_time_loop_matches_the_fused_kernel(kw: dict) -> None:
    torch.manual_seed(0)
    net = LSTMClassifier(2, ModelConfig(hidden=5, layers=2, dropout=0.0, recurrent_dropout=0.2, **kw)).eval()
    x = torch.randn(4, 9, 2)
    with torch.no_grad():
        torch.testing.assert_close(net.run_layer(0, x, loop=True), net.run_layer(0, x), atol=1e-5, rtol=1e-5)


def test_training_noise_touches_training_windows_only() -> None:
    x = torch.randn(8, 6, 2)
    torch.manual_seed(0)
    noisy = LSTMClassifier(2, ModelConfig(hidden=4, layers=1, dropout=0.0, augment_noise_std=0.5))
    plain = LSTMClassifier(2, ModelConfig(hidden=4, layers=1, dropout=0.0, augment_noise_std=0.0))
    plain.load_state_dict(noisy.state_dict())
    with torch.no_grad():
        noisy.eval(), plain.eval()
        assert torch.equal(noisy(x), plain(x)) and torch.equal(noisy(x), noisy(x))  # eval: no noise
        noisy.train(), plain.train()
        assert torch.equal(plain(x), plain(x))  # without noise (and dropout 0) training is deterministic
        assert not torch.equal(noisy(x), noisy(x))  # with it, every pass draws new noise
        assert not torch.equal(noisy(x), plain(x))


def test_window_summaries_by_hand() -> None:
    from lstm_core.model import HEAD_STATS, window_summaries

    # one window of 3 rows, 2 features: a = 1, 2, 4 and b = 3, 3, 0
    x = torch.tensor([[[1.0, 3.0], [2.0, 3.0], [4.0, 0.0]]])
    # means 7/3 and 2; lasts 4 and 0; slope = Σ c·x / Σ c² with c = −1, 0, 1: (4 − 1)/2 = 1.5 and (0 − 3)/2 = −1.5,
    # stretched over the window's L − 1 = 2 steps: 3 and −3
    expected = torch.tensor([[7 / 3, 2.0, 4.0, 0.0, 3.0, -3.0]])
    torch.testing.assert_close(window_summaries(x), expected)  # the three a network saved before head_stats read
    # the six, in the baseline's order: last, mean, std (population: a's squared deviations 16/9, 1/9, 25/9 sum to
    # 42/9, over 3 rows; b's 1, 1, 4 to 6), min, max, change
    six = torch.tensor([[4.0, 0.0, 7 / 3, 2.0, (42 / 27) ** 0.5, 2.0 ** 0.5, 1.0, 0.0, 4.0, 3.0, 3.0, -3.0]])
    torch.testing.assert_close(window_summaries(x, HEAD_STATS), six)
    with pytest.raises(ValueError, match="unknown window statistic 'median'"):
        window_summaries(x, ("median",))


def test_summary_head_reads_the_state_and_the_window_summaries() -> None:
    net = LSTMClassifier(2, ModelConfig(hidden=4, layers=1, dropout=0.0, head_summaries=True)).eval()
    assert net.head.in_features == 4 + 6 * 2  # the last state, then last, mean, std, min, max, change per feature
    with torch.no_grad():  # the head reads only feature a's mean (weight 1) and b's change (weight 2), bias 0.5
        net.head.weight.zero_()
        net.head.weight[0, 4 + 2] = 1.0
        net.head.weight[0, 4 + 11] = 2.0
        net.head.bias.fill_(0.5)
        x = torch.tensor([[[1.0, 3.0], [2.0, 3.0], [4.0, 0.0]]])
        assert float(net(x)) == pytest.approx(7 / 3 + 2 * -3.0 + 0.5)
    three = LSTMClassifier(2, ModelConfig(hidden=4, layers=1, head_stats=["mean", "last", "change"]))
    assert three.head.in_features == 4 + 3 * 2
    plain = LSTMClassifier(2, ModelConfig(hidden=4, layers=1, head_summaries=False))
    assert plain.head.in_features == 4 and not plain.head_summaries


def test_a_scorer_saved_before_head_stats_existed_loads_with_the_three_it_read() -> None:
    # versions registered before head_stats was a field stored a model config without it; their heads read the
    # three statistics mean, last, change. Loading must rebuild that head, not today's default six.
    cfg = ModelConfig(hidden=4, layers=1, head_stats=["mean", "last", "change"])
    scorer = RareEventScorer(LSTMClassifier(2, cfg).eval(), np.zeros(2), np.ones(2), SPEC)
    tree = safe_files.scorer_tree(scorer)
    for key in ("head_stats", "head_init"):
        del tree["model"][key]
    loaded = safe_files.scorer_from_tree(tree)
    assert loaded.network.head_stats == ("mean", "last", "change")
    x = torch.randn(3, 6, 2)
    with torch.no_grad():
        assert torch.equal(loaded(x), scorer(x))
