"""Training throughput of the project's trainer (or the tutorial-style reference) on synthetic data.

    python -m benchmarks.train_throughput --rows 100000 --features 16 --window 48 --hidden 64 \
        --layers 2 --batch 256 --epochs 2 --device cpu [--impl project|tutorial]

Prints exactly one JSON line: windows_per_s, peak_rss_mb, peak_gpu_mb, seconds, device (plus the
arguments). Peak RSS covers the whole process: data, windows and training.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np
import torch

from benchmarks.synthetic import rows_and_labels
from lstm_core.config import ModelConfig, TrainConfig
from lstm_core.train import fit_lstm, resolve_device
from lstm_core.windows import WindowSet


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default in (("rows", 100_000), ("features", 16), ("window", 48), ("hidden", 64), ("layers", 2),
                          ("batch", 256), ("epochs", 2)):
        p.add_argument(f"--{flag}", type=int, default=default)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--impl", choices=("project", "tutorial", "bare"), default="project",
                   help="bare: the limit, forward+backward+step on pre-built device tensors, no data path at all")
    p.add_argument("--compile", action="store_true",
                   help="trial: wrap the project's network in torch.compile (kept out of the trainer: "
                        "slower on a 2-core CPU, see benchmarks/README.md)")
    return p.parse_args(argv)


def train_bare(n: int, window: int, features: int, model_cfg: ModelConfig, cfg: TrainConfig,
               device: torch.device) -> int:
    """The ceiling for the project's step: the same model, loss, optimiser, clipping and autocast, fed from
    16 batches already on the device, for as many windows as an epoch of the real data holds."""
    from torch import nn

    from lstm_core.model import LSTMClassifier
    from lstm_core.train import _autocast

    torch.manual_seed(cfg.seed)
    xs = torch.randn(16, cfg.batch_size, window, features, device=device)
    ys = (torch.rand(16, cfg.batch_size, device=device) < 0.05).float()
    model = LSTMClassifier(features, model_cfg).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    loss_fn = nn.BCEWithLogitsLoss()
    steps = -(-n // cfg.batch_size) * cfg.epochs
    for step in range(steps):
        with _autocast(device):
            logits = model(xs[step % 16])
        loss = loss_fn(logits.float(), ys[step % 16])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), cfg.clip_norm)
        opt.step()
    return steps * cfg.batch_size


def run(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    x, y = rows_and_labels(args.rows, args.features, args.window)
    model_cfg = ModelConfig(hidden=args.hidden, layers=args.layers, dropout=0.0)
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch, device=args.device, patience=args.epochs + 1)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    if args.impl == "project":
        if args.compile:
            import lstm_core.train as trainer

            plain = trainer.LSTMClassifier
            trainer.LSTMClassifier = lambda *a, **kw: torch.compile(plain(*a, **kw))
        ends = np.arange(args.window - 1, args.rows, dtype=np.int64)
        ws = WindowSet(x, ends, args.window, y[ends], np.zeros(len(ends), np.int8), np.zeros(len(ends), bool))
        fit_lstm(ws, None, model_cfg, cfg, epochs=args.epochs)
        seen = len(ends) * args.epochs
    elif args.impl == "bare":
        seen = train_bare(args.rows - args.window + 1, args.window, args.features, model_cfg, cfg, device)
    else:
        from benchmarks.tutorial import train_tutorial_style

        seen = train_tutorial_style(x, y, args.window, model_cfg, cfg, device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {
        "windows_per_s": round(seen / seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.type == "cuda" else 0.0,
        "seconds": round(seconds, 3),
        "device": str(device),
        **{k: v for k, v in vars(args).items() if k != "device"},
    }


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(run(parse(argv))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
