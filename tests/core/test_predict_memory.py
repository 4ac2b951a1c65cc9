"""Predicting many windows in a worker thread does not grow the process with every batch."""
from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap

import pytest

# A stage on a worker thread, as Prefect runs it: it frees one large block (as reading a workspace file does,
# which lifts glibc's mmap threshold), then predicts 150 batches of 8,192 windows of 24 rows x 32 features
# (25 MB gathered per batch) with a network that averages each window.
_PREDICT = textwrap.dedent("""
    import json, sys, threading, numpy as np, torch
    from torch import nn
    from lstm_core.train import DeviceWindows, predict_logits
    from lstm_core.windows import WindowSet
    torch.set_num_threads(1)

    class Mean(nn.Module):
        def forward(self, x):
            return x.mean(dim=(1, 2))

    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    def stage():
        big = np.ones((30 << 20) // 8)
        del big
        rng = np.random.default_rng(0)
        rows = rng.standard_normal((200_000, 32), dtype=np.float32)
        ends = rng.integers(23, 200_000, 150 * 8192)
        n = len(ends)
        ws = WindowSet(rows, ends, 24, np.zeros(n, np.int8), ends, np.zeros(n, bool))
        data = DeviceWindows(ws, torch.device("cpu"))
        start = rss_mb()
        logits = predict_logits(Mean(), data, batch_size=8192)
        grown = rss_mb() - start
        assert logits.shape == (n,)
        check = ws.gather(np.arange(1000)).mean(axis=(1, 2))
        return grown, float(np.abs(logits[:1000].numpy() - check).max())

    out = {}
    t = threading.Thread(target=lambda: out.update(zip(("grown", "error"), stage())))
    t.start()
    t.join()
    print(json.dumps(out))
""")


def _glibc_linux() -> bool:
    try:
        return os.path.exists("/proc/self/statm") and hasattr(ctypes.CDLL("libc.so.6"), "mallopt")
    except OSError:
        return False


@pytest.mark.skipif(not _glibc_linux(), reason="measures glibc's allocator through /proc")
def test_predicting_in_a_worker_thread_does_not_grow_with_every_batch():
    done = subprocess.run([sys.executable, "-c", _PREDICT], capture_output=True, text=True, check=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["error"] < 1e-5  # the logits are the windows' means, in order
    # With one small tensor kept per batch, allocated between batches of large temporaries, the process grew by
    # about 20 MB per batch (3 GB here); written into one tensor allocated up front, the logits add 5 MB.
    assert out["grown"] < 150, out
