"""Where should the threshold be chosen? The validation slice (early stopping's) or a calibration slice of its own.

    python -m benchmarks.calibration                        # fractions 0, 0.1, 0.2 on the C-MAPSS demo folds
    python -m benchmarks.calibration --fractions 0,0.2 --epochs 2 --seeds 1
    python -m benchmarks.calibration --dataset beijing   # the Beijing PM2.5 demo folds (time split)

It calls lstm_core directly on a demo's set (C-MAPSS: entity split, 3 folds, window 50, "fails within 30
cycles", constant sensors dropped as the contract does; Beijing: time split, 3 folds, window 24, event
PM2.5 >= 300 within 6 hours) and, for each ``split.calibration_fraction``, trains
the LSTM on each fold's training part with early stopping on its validation slice, chooses the threshold on
the calibration slice (on validation at 0) and scores the test part; logistic and hgb baselines go the same
way. Besides test MCC and F1 at the chosen threshold it reports the *threshold regret*: the best MCC any
threshold reaches on the test windows minus the MCC at the chosen one, which measures the choice of the
threshold apart from the quality of the scores.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from lstm_core.baselines import make_baseline
from lstm_core.config import load_config
from lstm_core.data import resolve_spec, to_series
from lstm_core.datasets import SENSOR_COLUMNS, load_beijing_pm25, load_cmapss_fd001
from lstm_core.evaluate import evaluate_fold
from lstm_core.metrics import choose_threshold, score_metrics
from lstm_core.splits import fold_windows, make_folds
from lstm_core.train import LSTMWindowModel, fit_lstm
from lstm_core.windows import make_windows

WINDOW, FAILURE_WITHIN = 50, 30


def config(fraction: float, epochs: int, seed: int, dataset: str = "cmapss"):
    if dataset == "beijing":
        return load_config(None, {
            "data.time_col": "time", "data.event_col": "event", "data.horizon": 6, "window.length": 24,
            "window.max_gap": "1h", "split.by": "time", "split.folds": 3, "split.calibration_fraction": fraction,
            "train.epochs": epochs, "train.patience": 3, "train.seed": seed, "model.hidden": 32, "model.layers": 1,
        })
    return load_config(None, {
        "data.time_col": "cycle", "data.entity_col": "engine", "data.label_col": "label",
        "data.label_lookahead": FAILURE_WITHIN, "data.features": list(SENSOR_COLUMNS), "window.length": WINDOW,
        "split.by": "entity", "split.folds": 3, "split.calibration_fraction": fraction, "train.epochs": epochs,
        "train.batch_size": 128, "train.patience": 3, "train.seed": seed, "model.hidden": 32, "model.layers": 1,
    })


def oracle_mcc(y: np.ndarray, scores: np.ndarray) -> float:
    """The best test MCC any threshold reaches (what a perfect threshold choice would give)."""
    return score_metrics(y, scores, choose_threshold(y, scores, "mcc"))["mcc"]


def run(fractions: list[float], epochs: int, seeds: list[int], dataset: str = "cmapss") -> dict:
    frame = load_beijing_pm25() if dataset == "beijing" else load_cmapss_fd001().train
    columns = SENSOR_COLUMNS if dataset == "cmapss" else [c for c in frame.columns if c not in ("time", "event")
                                                           and frame[c].dtype.kind in "if"]
    varying = [c for c in columns if frame[c].std() > 0]  # the contract drops constant features
    out: dict = {}
    for fraction in fractions:
        rows: dict[str, list[dict]] = {}
        for seed in seeds:
            cfg = config(fraction, epochs, seed, dataset)
            cfg.data.features = varying
            series = to_series(frame, resolve_spec(frame, cfg.data))
            index = make_windows(series, cfg.window.length, cfg.window.max_gap)
            for fold in make_folds(series, index, cfg.split):
                fw = fold_windows(series, index, fold, cfg.window.length)
                torch.manual_seed(seed)
                started = time.perf_counter()
                lstm = LSTMWindowModel(cfg.model, cfg.train)
                lstm.result = fit_lstm(fw.train, fw.val, cfg.model, cfg.train)
                models = {"lstm": (lstm, False)}
                if seed == seeds[0]:
                    models |= {n: (make_baseline(n, seed), True) for n in ("logistic", "hgb")}
                for name, (model, fit) in models.items():
                    s = evaluate_fold(model, fw.train, fw.val, fw.test, "mcc", fit=fit, calib=fw.calib)
                    m = s.metrics
                    rows.setdefault(name, []).append({
                        "seed": seed, "fold": fold.k, "train": len(fw.train), "val": len(fw.val),
                        "calib": 0 if fw.calib is None else len(fw.calib), "threshold": s.threshold,
                        "pr_auc": m["pr_auc"], "mcc": m["mcc"], "f1": m["f1"],
                        "regret": oracle_mcc(fw.test.y, s.test_scores) - m["mcc"]})
                print(f"fraction {fraction} seed {seed} fold {fold.k}: " + ", ".join(
                    f"{n} MCC {r[-1]['mcc']:.3f} regret {r[-1]['regret']:.3f} PR-AUC {r[-1]['pr_auc']:.3f}"
                    for n, r in rows.items() if r[-1]["fold"] == fold.k and r[-1]["seed"] == seed)
                    + f" ({time.perf_counter() - started:.0f} s)", flush=True)
        out[str(fraction)] = {n: {**{f"{k}_mean": statistics.fmean(r[k] for r in rs) for k in
                                     ("pr_auc", "mcc", "f1", "regret")},
                                  **{f"{k}_std": statistics.pstdev([r[k] for r in rs]) for k in ("mcc", "regret")},
                                  "rows": rs} for n, rs in rows.items()}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cmapss", choices=("cmapss", "beijing"))
    parser.add_argument("--fractions", default="0,0.1,0.2")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--json", default=None, help="Write every fold's numbers here.")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result = run([float(f) for f in args.fractions.split(",")], args.epochs, [int(s) for s in args.seeds.split(",")],
                 args.dataset)
    print("fraction | model | test MCC | threshold regret | F1 | PR-AUC  (mean over folds and seeds)")
    for fraction, models in result.items():
        for name, v in models.items():
            print(f"{fraction} | {name} | {v['mcc_mean']:.3f} ± {v['mcc_std']:.3f} | {v['regret_mean']:.3f} ± "
                  f"{v['regret_std']:.3f} | {v['f1_mean']:.3f} | {v['pr_auc_mean']:.3f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
