"""Peak memory and time of resampling one fold's training windows: 200k windows × 48 steps × 16 features.

Flattened, those windows are 200 000 × 768 float32 = 614 MB. The pipeline never flattens them all: SMOTE reads
only the positives, the others get the majority within ``resample.memory_budget_mb``, and the synthetic windows
are appended after the training rows. ``--naive`` runs imbalanced-learn on the whole flattened array instead,
the textbook way, for comparison. Each run is one process, so ``ru_maxrss`` is that run's peak.

    python -m benchmarks.resample_memory                      # the pipeline's SMOTE
    python -m benchmarks.resample_memory --naive              # SMOTE on all 614 MB, for comparison
    python -m benchmarks.resample_memory --strategy adasyn --budget-mb 1024

Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np

from lstm_core.config import ResampleConfig
from lstm_core.resample import MB, estimate_bytes, over_target, resample
from lstm_core.windows import WindowSet


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def training_windows(n: int, length: int, f: int, rate: float, seed: int) -> WindowSet:
    """n windows over one long series of n + L − 1 rows (what a fold's training part looks like)."""
    rng = np.random.default_rng(seed)
    rows = rng.normal(size=(n + length - 1, f)).astype(np.float32)  # (N, F)
    ends = np.arange(length - 1, n + length - 1, dtype=np.int64)
    y = (rng.random(n) < rate).astype(np.int8)
    rows[ends[y == 1]] += 1.5  # positives differ in their last row
    zeros = np.zeros(n, np.int8)
    return WindowSet(rows, ends, length, y, zeros, zeros.astype(bool))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="smote")
    parser.add_argument("--windows", type=int, default=200_000)
    parser.add_argument("--length", type=int, default=48)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--positive-rate", type=float, default=0.02)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--budget-mb", type=float, default=2048)
    parser.add_argument("--naive", action="store_true", help="imbalanced-learn on every flattened window")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    ws = training_windows(args.windows, args.length, args.features, args.positive_rate, args.seed)
    pos = int(ws.y.sum())
    neg = len(ws) - pos
    added = over_target(neg, pos, args.ratio)
    before = peak_rss_mb()
    started = time.perf_counter()
    if args.naive:
        from imblearn.over_sampling import SMOTE

        flat = ws.gather().reshape(len(ws), -1)  # (n, L·F): all 614 MB
        x_res, _ = SMOTE(sampling_strategy=args.ratio, random_state=args.seed).fit_resample(flat, ws.y)
        out_windows, synthetic, info = len(x_res), len(x_res) - len(ws), {}
    else:
        cfg = ResampleConfig(strategy=args.strategy, sampling_strategy=args.ratio, memory_budget_mb=args.budget_mb)
        res = resample(ws, cfg, args.seed)
        out_windows, synthetic, info = len(res.windows), int(res.windows.synthetic.sum()), res.info
    seconds = time.perf_counter() - started
    window_bytes = args.length * args.features * 4
    print(json.dumps({
        "strategy": args.strategy, "naive": args.naive, "windows": len(ws), "length": args.length,
        "features": args.features, "positives": pos, "synthetic": synthetic, "windows_after": out_windows,
        "flattened_input_mb": round(len(ws) * window_bytes / MB, 1),
        "synthetic_output_mb": round(added * window_bytes / MB, 1),
        "estimate_mb": info.get("memory_estimate_mb",
                                round(estimate_bytes(len(ws), added, args.length, args.features, 5) / MB, 1)),
        "sampler_windows": info.get("sampler_windows", len(ws)),
        "rss_before_mb": round(before, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "seconds": round(seconds, 2),
    }))


if __name__ == "__main__":
    main()
