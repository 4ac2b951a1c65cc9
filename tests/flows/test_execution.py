"""The thread count torch gets in the train and evaluate stages."""
from __future__ import annotations

import os

import pytest
import torch

from lstm_core.config import load_config
from lstm_pipeline.execution import torch_threads
from tasks.folds import set_torch_threads


@pytest.fixture
def four_cpus(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.mark.parametrize("omp, expected", [(None, 4), ("2", 2), ("1", 1), ("16", 4), ("0", 4), ("", 4),
                                           ("two", 4), (" 3 ", 3)])
def test_the_default_is_the_allowed_cpus_capped_by_omp_num_threads(four_cpus, monkeypatch, omp, expected):
    if omp is not None:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    assert torch_threads(None) == expected


def test_a_configured_count_wins_over_the_environment(four_cpus, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert torch_threads(3) == 3


def test_the_affinity_not_the_machine_decides(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5}, raising=False)
    assert torch_threads(None) == 1


def test_the_train_stage_sets_torch_to_it(four_cpus, monkeypatch):
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    try:
        set_torch_threads(load_config(None, {}))
        assert torch.get_num_threads() == 1
        set_torch_threads(load_config(None, {"execution.torch_threads": 2}))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
