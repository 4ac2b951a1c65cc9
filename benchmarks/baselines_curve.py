"""Learning curve of the learned baselines: test PR-AUC and fit seconds against the training sample size.

    python -m benchmarks.baselines_curve                              # cmapss, beijing, synthetic (minutes)
    python -m benchmarks.baselines_curve --sets cmapss --sizes 5000,all
    python -m benchmarks.baselines_curve --sets synthetic --hgb-full  # also hgb without early stopping
    python -m benchmarks.baselines_curve --sets synthetic --sizes 500000 --stop-windows 25000,100000,all
        # hgb stopping early on validation samples of these sizes (hgb_stop_<size>)

It mirrors the training flow's walk-forward on each set (windows, folds, the fold scaler) and, per fold, fits
logistic and hgb on a stratified sample of each size of the fold's training windows (``all``: every one),
chooses the threshold on the validation windows and scores the test windows, as ``evaluate_fold`` does in the
flow. One SummaryCache per fold supplies the summary features, computed before the clock starts, so the
seconds are the classifier's fit alone. It prints, per set, PR-AUC mean ± std over folds and the mean fit
seconds per size, and writes the raw results as JSON.

The sets: the bundled C-MAPSS FD001 and Beijing PM2.5 as ``benchmarks.quality`` builds them, and
``synthetic``: the table ``benchmarks.pipeline`` writes (1,000,000 rows, 32 features, 100 entities, window 24,
2 folds by default), where the sample size matters most.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from typing import Any

import numpy as np

from benchmarks.pipeline import synthetic_table
from benchmarks.quality import Bench, beijing, cmapss, contract_features
from lstm_core.baselines import HistGBBaseline, SummaryCache, make_baseline
from lstm_core.config import load_config
from lstm_core.data import resolve_spec, to_series
from lstm_core.evaluate import evaluate_fold
from lstm_core.splits import fold_windows, make_folds
from lstm_core.windows import make_windows

SIZES = ("5000", "10000", "20000", "50000", "100000", "200000", "all")


class FullHGB(HistGBBaseline):
    """hgb as it was before early stopping: all ``max_iter`` iterations, for comparison."""

    name = "hgb_full"

    def _make(self):
        return super()._make().set_params(early_stopping=False)

    def _fit_model(self, model, x, y, val):
        return model.fit(x, y)


def stopping_hgb(size: int | None):
    """hgb whose early stopping reads a stratified sample of at most ``size`` validation windows (None: all)."""

    class StopHGB(HistGBBaseline):
        name = f"hgb_stop_{'all' if size is None else size}"
        stopping_windows = size

    return StopHGB


def synthetic(extra: dict[str, Any], rows: int = 1_000_000, features: int = 32, window: int = 24,
              entities: int = 100, folds: int = 2, rate: float = 0.02) -> Bench:
    frame = synthetic_table(rows, features, window, entities, rate)
    cfg = load_config(None, {"data.time_col": "step", "data.entity_col": "machine", "data.label_col": "label",
                             "window.length": window, "split.folds": folds, **extra})
    return Bench("synthetic", frame, cfg)


def fold_sets(bench: Bench):
    """The fold window sets (train, val, test) of one set, as the flow's prepare-fold cuts them."""
    cfg = bench.cfg
    spec = replace(resolve_spec(bench.frame, cfg.data), features=tuple(contract_features(bench.frame, cfg)))
    series = to_series(bench.frame, spec)
    length = int(cfg.window.length)
    index = make_windows(series, length, cfg.window.max_gap, cfg.data.known_after)
    for fold in make_folds(series, index, cfg.split):
        yield fold.k, fold_windows(series, index, fold, length)


def curve(bench: Bench, sizes: list[int | None], models: list[str], log=print) -> dict[str, Any]:
    """Per model and size: the test PR-AUC and fit seconds of each fold."""
    cfg = bench.cfg
    out: dict[str, dict[str, list[dict[str, float]]]] = {}
    for k, fw in fold_sets(bench):
        cache = SummaryCache()
        started = time.perf_counter()
        for ws in (fw.val, fw.test):
            cache.features(ws)
        log(f"  {bench.name} fold {k}: {len(fw.train)} training windows ({fw.train.y.mean():.4f} positive), "
            f"{len(fw.val)} validation, {len(fw.test)} test; val+test features {time.perf_counter() - started:.1f} s")
        done: dict[int, dict[str, dict[str, float]]] = {}  # a size at or above the fold's windows is "all"
        for size in sizes:
            label = "all" if size is None else str(size)
            effective = len(fw.train) if size is None else min(size, len(fw.train))
            if effective in done:
                for name, row in done[effective].items():
                    out.setdefault(name, {}).setdefault(label, []).append(row)
                continue
            started = time.perf_counter()
            sample = cache.sample(fw.train, size, cfg.train.seed)
            cache.features(sample)
            feature_s = time.perf_counter() - started
            for name in models:
                if name.startswith("hgb_stop_"):
                    stop = name.removeprefix("hgb_stop_")
                    model = stopping_hgb(None if stop == "all" else int(stop))(cfg.train.seed, size, cache)
                elif name == "hgb_full":
                    model = FullHGB(cfg.train.seed, size, cache)
                else:
                    model = make_baseline(name, cfg.train.seed, size, cache)
                started = time.perf_counter()
                model.fit(fw.train, fw.val)
                fit_s = time.perf_counter() - started
                s = evaluate_fold(model, fw.train, fw.val, fw.test, cfg.evaluate.threshold_metric, fit=False)
                iters = getattr(model.model_, "n_iter_", None)
                row = {"windows": len(sample), "pr_auc": s.metrics["pr_auc"], "fit_s": fit_s, "feature_s": feature_s,
                       "iterations": int(iters if np.isscalar(iters) else np.max(iters)) if iters is not None else 0}
                out.setdefault(name, {}).setdefault(label, []).append(row)
                done.setdefault(effective, {})[name] = row
                log(f"  {bench.name} fold {k} {name} {row['windows']:>7} windows: PR-AUC {row['pr_auc']:.4f}, "
                    f"fit {fit_s:.1f} s, {row['iterations']} iterations")
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    """One markdown table: per set and size, each model's PR-AUC (mean ± std over folds) and mean fit seconds."""
    order = ["logistic", "hgb", "hgb_full"]
    models = sorted({m for r in results.values() for m in r},
                    key=lambda m: (order.index(m) if m in order else len(order), m))
    head = "| set | sample | windows | " + " | ".join(f"{m} PR-AUC | {m} fit s" for m in models) + " |"
    lines = [head, "|" + "---|" * (3 + 2 * len(models))]
    for name, res in results.items():
        sizes = sorted({s for m in models for s in res.get(m, {})}, key=lambda s: float("inf") if s == "all" else int(s))
        for size in sizes:
            cells, windows = [], ""
            for m in models:
                rows = res.get(m, {}).get(size)
                if not rows:
                    cells += ["", ""]
                    continue
                windows = "/".join(str(r["windows"]) for r in rows)
                auc = [r["pr_auc"] for r in rows]
                cells += [f"{np.mean(auc):.4f} ± {np.std(auc):.4f}", f"{np.mean([r['fit_s'] for r in rows]):.1f}"]
            lines.append(f"| {name} | {size} | {windows} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="cmapss,beijing,synthetic")
    ap.add_argument("--sizes", default=",".join(SIZES), help="training sample sizes; 'all': every window")
    ap.add_argument("--models", default="logistic,hgb")
    ap.add_argument("--hgb-full", action="store_true", help="also hgb without early stopping (200 iterations)")
    ap.add_argument("--stop-windows", default=None,
                    help="also hgb stopping early on a stratified sample of at most this many validation windows, "
                         "per comma-separated size ('all': every one)")
    ap.add_argument("--synthetic-sizes", default=None, help="sizes for the synthetic set (default: --sizes)")
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the synthetic set")
    ap.add_argument("--out", default="benchmarks/baselines_curve.json")
    args = ap.parse_args(argv)
    sizes = [None if s == "all" else int(s) for s in args.sizes.split(",")]
    models = args.models.split(",") + (["hgb_full"] if args.hgb_full else [])
    models += [f"hgb_stop_{s}" for s in args.stop_windows.split(",")] if args.stop_windows else []
    builders = {"cmapss": cmapss, "beijing": beijing, "synthetic": lambda extra: synthetic(extra, rows=args.rows)}
    results = {}
    for name in args.sets.split(","):
        started = time.perf_counter()
        own = sizes if name != "synthetic" or not args.synthetic_sizes else [
            None if s == "all" else int(s) for s in args.synthetic_sizes.split(",")]
        results[name] = curve(builders[name]({}), own, models)
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    print(table(results))
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(results, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
