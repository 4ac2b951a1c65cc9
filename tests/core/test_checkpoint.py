"""Per-epoch checkpoints: a run stopped after epoch 2 and resumed ends bit-identical to one never stopped."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from lstm_core.config import ModelConfig, ResampleConfig, TrainConfig
from lstm_core.ensemble import fit_members
from lstm_core.train import fit_lstm
from lstm_core.windows import WindowSet
from lstm_pipeline.workspace import FileCheckpointer

# Dropout and training noise draw from torch's global RNG at every step; the cosine schedule moves the
# rate at every step and the averaged weights (EMA) carry over: every piece of loop state has to come back
# for the weights to match. One evaluation (and checkpoint) per epoch, no step floor.
NET = ModelConfig(hidden=8, layers=2, dropout=0.3, augment_noise_std=0.1)
TRAIN = TrainConfig(epochs=4, batch_size=32, lr=1e-2, patience=20, device="cpu", seed=5,
                    schedule="cosine", min_steps=0, evaluations=4, ema_decay=0.9)


def planted(n: int, seed: int, length: int = 6) -> WindowSet:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, length, 2)).astype(np.float32)
    y = (rng.random(n) < 0.3).astype(np.int8)
    x[y == 1, -2:, 0] += 1.0
    return WindowSet.from_dense(x, y)


class MemoryCheckpointer:
    def __init__(self) -> None:
        self.state, self.saves = None, 0

    def load(self):
        return copy.deepcopy(self.state)

    def save(self, state) -> None:
        self.state, self.saves = copy.deepcopy(state), self.saves + 1


class Crash(Exception):
    pass


def crash_after(epoch: int, seen: list):
    def on_epoch(row):
        seen.append(row["epoch"])
        if row["epoch"] == epoch:
            raise Crash

    return on_epoch


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("store", ["memory", "file"])
def test_resumed_run_is_bit_identical_and_trains_only_the_missing_epochs(store, tmp_path) -> None:
    train, val = planted(64, 0), planted(24, 1)
    whole = fit_lstm(train, val, NET, TRAIN)
    ckpt = MemoryCheckpointer() if store == "memory" else FileCheckpointer(tmp_path / "fold-1.pt")
    first: list[int] = []
    with pytest.raises(Crash):
        fit_lstm(train, val, NET, TRAIN, checkpoint=ckpt, on_epoch=crash_after(2, first))
    assert first == [0, 1, 2] and ckpt.load()["epoch"] == 2  # evaluation 0 is the logistic start
    second: list[int] = []
    resumed = fit_lstm(train, val, NET, TRAIN, checkpoint=ckpt, on_epoch=lambda row: second.append(row["epoch"]))
    assert second == [3, 4]  # the start and epochs 1 and 2 came from the checkpoint
    assert resumed.history == whole.history and len(whole.history) == 5
    assert {r["lr"] for r in whole.history} != {TRAIN.lr}  # the scheduler did cut the rate on the way
    assert (resumed.best_epoch, resumed.best_val_pr_auc) == (whole.best_epoch, whole.best_val_pr_auc)
    assert_same_weights(resumed.state_dict, whole.state_dict)
    assert ckpt.load()["epoch"] == 4


def test_finished_or_early_stopped_checkpoint_trains_nothing_more() -> None:
    train, val = planted(64, 2), planted(24, 3)
    cfg = TRAIN.model_copy(update={"patience": 1, "epochs": 8})
    ckpt = MemoryCheckpointer()
    first = fit_lstm(train, val, NET, cfg, checkpoint=ckpt)
    assert len(first.history) < 8  # stopped early
    again: list[dict] = []
    second = fit_lstm(train, val, NET, cfg, checkpoint=ckpt, on_epoch=again.append)
    assert again == [] and second.history == first.history
    assert_same_weights(second.state_dict, first.state_dict)


def test_checkpoint_of_another_config_is_not_resumed() -> None:
    train, val = planted(64, 4), planted(24, 5)
    ckpt = MemoryCheckpointer()
    fit_lstm(train, val, NET, TRAIN.model_copy(update={"epochs": 2}), checkpoint=ckpt)
    seen: list[int] = []
    other = TRAIN.model_copy(update={"lr": 5e-3})
    result = fit_lstm(train, val, NET, other, checkpoint=ckpt, on_epoch=lambda row: seen.append(row["epoch"]))
    assert seen == [0, 1, 2, 3, 4]  # from its own start
    assert_same_weights(result.state_dict, fit_lstm(train, val, NET, other).state_dict)


def test_balanced_bagging_checkpoints_each_member() -> None:
    train, val = planted(80, 6), planted(24, 7)
    bag = ResampleConfig(strategy="balanced_bagging", bagging_estimators=2)
    cfg = TRAIN.model_copy(update={"epochs": 3, "evaluations": 3})
    whole = fit_members(train, val, NET, cfg, bag)
    stores = {1: MemoryCheckpointer(), 2: MemoryCheckpointer()}
    first: list[tuple] = []

    def crash_in_member_2(row):
        first.append((row["member"], row["epoch"]))
        if row == {**row, "member": 2, "epoch": 1}:
            raise Crash

    with pytest.raises(Crash):
        fit_members(train, val, NET, cfg, bag, on_epoch=crash_in_member_2, checkpoint_for=stores.__getitem__)
    assert first == [(1, 0), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1)]
    second: list[tuple] = []
    resumed = fit_members(train, val, NET, cfg, bag, on_epoch=lambda row: second.append((row["member"], row["epoch"])),
                          checkpoint_for=stores.__getitem__)
    assert second == [(2, 2), (2, 3)]  # member 1 finished before the crash; member 2 goes on from epoch 2
    for a, b in zip(resumed, whole, strict=True):
        assert a.history == b.history
        assert_same_weights(a.state_dict, b.state_dict)


def test_a_run_killed_right_after_its_logistic_start_resumes_from_it() -> None:
    train, val = planted(64, 8), planted(24, 9)
    whole = fit_lstm(train, val, NET, TRAIN)
    ckpt, first = MemoryCheckpointer(), []
    with pytest.raises(Crash):
        fit_lstm(train, val, NET, TRAIN, checkpoint=ckpt, on_epoch=crash_after(0, first))
    assert first == [0] and ckpt.load()["step"] == 0 and ckpt.load()["best_step"] == 0
    second: list[int] = []
    resumed = fit_lstm(train, val, NET, TRAIN, checkpoint=ckpt, on_epoch=lambda row: second.append(row["epoch"]))
    assert second == [1, 2, 3, 4] and resumed.history == whole.history
    assert_same_weights(resumed.state_dict, whole.state_dict)
