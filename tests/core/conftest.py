"""Core tests train networks of a few hundred weights on a few hundred windows."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tensors this small finish before a second intra-op thread is useful; on a busy machine it only waits."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
