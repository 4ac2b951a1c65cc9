"""Model quality: `train` defaults against every baseline on four data sets, walk-forward, one table.

    python -m benchmarks.quality                       # all sets, train defaults
    python -m benchmarks.quality --sets cmapss,order   # a subset
    python -m benchmarks.quality --epochs 1 --min-steps 20 --sets order   # a smoke run (seconds)
    python -m benchmarks.quality --set model.head_summaries=true --set train.select_on=val_pr_auc

It calls lstm_core directly and mirrors the training flow stage by stage: the contract's feature rule
(constant features dropped, near-constant ones by ``data.near_constant``), windows, walk-forward folds, the
fold scaler, the resampler, ``fit_lstm`` with early stopping on the validation slice, the threshold chosen on
validation, every baseline on the same test windows, then the final model (``fit_final``) and its own metrics
on the held-back latest slice. For C-MAPSS it also scores the final model on the published protocol (the last
window of each test engine, RUL_FD001).

The sets:
- cmapss: bundled NASA C-MAPSS FD001, entity split, window 50, label "fails within 30 cycles" (the demo's).
- beijing: bundled Beijing PM2.5, time split, window 24, event = PM2.5 >= 300 within 6 hours (the demo's).
- summary: synthetic; feature 0 sits 1.0 higher in the 8 rows up to each positive row: a window's mean and
  last value are enough.
- order: synthetic; the signal is a sequence of 10-row shapes, mostly fall-then-rise, rarely rise-then-fall;
  the label is 1 on the row after a rise-then-fall. Both shapes hold the same values in mirrored order, so
  the window summaries (mean, std, min, max, slope) do not tell them apart: only the order of the rows does.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

from lstm_core.baselines import make_baseline
from lstm_core.config import PipelineConfig, load_config
from lstm_core.data import resolve_spec, to_series
from lstm_core.ensemble import fit_model
from lstm_core.evaluate import evaluate_fold
from lstm_core.metrics import score_metrics
from lstm_core.resample import resample
from lstm_core.scoring import fit_final
from lstm_core.splits import fit_scaler, fold_windows, make_folds, scale_rows
from lstm_core.windows import make_windows, window_set

SETS = ("cmapss", "beijing", "summary", "order")


@dataclass
class Bench:
    name: str
    frame: pd.DataFrame
    cfg: PipelineConfig


def _cfg(overrides: dict[str, Any], extra: dict[str, Any]) -> PipelineConfig:
    return load_config(None, {**overrides, **extra})


def cmapss(extra: dict[str, Any]) -> Bench:
    from lstm_core.datasets import FAILURE_WITHIN, SENSOR_COLUMNS, load_cmapss_fd001

    cfg = _cfg({"data.time_col": "cycle", "data.entity_col": "engine", "data.label_col": "label",
                "data.label_lookahead": FAILURE_WITHIN, "data.features": list(SENSOR_COLUMNS),
                "window.length": 50, "split.by": "entity", "split.folds": 3}, extra)
    return Bench("cmapss", load_cmapss_fd001().train, cfg)


def beijing(extra: dict[str, Any]) -> Bench:
    from lstm_core.datasets import load_beijing_pm25

    cfg = _cfg({"data.time_col": "time", "data.event_col": "event", "data.horizon": 6, "window.length": 24,
                "window.max_gap": "1h", "split.by": "time", "split.folds": 3}, extra)
    return Bench("beijing", load_beijing_pm25(), cfg)


def summary_rows(rows: int, seed: int = 0, rate: float = 0.02, features: int = 4, lead: int = 8):
    """Noise rows; the ``lead`` rows up to and including each positive row sit 1.0 higher in feature 0."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features)).astype(np.float32)
    y = (rng.random(rows) < rate).astype(np.int8)
    y[:lead] = 0
    for lag in range(lead):
        x[np.flatnonzero(y) - lag, 0] += 1.0
    return x, y


def summary_set(extra: dict[str, Any], rows: int = 20_000, seed: int = 0) -> Bench:
    x, y = summary_rows(rows, seed)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])]).assign(time=np.arange(rows), label=y)
    cfg = _cfg({"data.time_col": "time", "data.label_col": "label", "window.length": 24, "split.by": "time",
                "split.folds": 3}, extra)
    return Bench("summary", frame, cfg)


def order_rows(rows: int, seed: int = 0, period: int = 10, rate: float = 0.1, noise: float = 0.3):
    """Rows of back-to-back 10-row shapes in feature 0 (and a pure-noise feature 1), and their labels.

    A shape is rise-then-fall (a peak, with probability ``rate``) or fall-then-rise (a trough): the trough is
    2 − the peak, so both hold the same values. Label[t] = 1 on the first row after a peak (one row per peak,
    so the last label seen says nothing about the next).
    """
    rng = np.random.default_rng(seed)
    half = period // 2
    peak = np.concatenate([np.arange(half), np.arange(half, 0, -1)]) * (2.0 / half)  # 0 … 2 … 0.4
    trough = 2.0 - peak
    n_shapes = rows // period
    is_peak = rng.random(n_shapes) < rate
    signal = np.where(is_peak[:, None], peak, trough).reshape(-1)
    x = np.stack([signal, np.zeros_like(signal)], axis=1) + noise * rng.standard_normal((len(signal), 2))
    label = np.zeros(len(signal), np.int8)
    label[period::period] = is_peak[:-1]  # the first row of the next shape
    return x.astype(np.float32), label


def order_set(extra: dict[str, Any], rows: int = 40_000, seed: int = 0) -> Bench:
    x, y = order_rows(rows, seed)
    frame = pd.DataFrame({"time": np.arange(len(y)), "f0": x[:, 0], "f1": x[:, 1], "label": y})
    cfg = _cfg({"data.time_col": "time", "data.label_col": "label", "window.length": 30, "split.by": "time",
                "split.folds": 3}, extra)
    return Bench("order", frame, cfg)


BUILDERS = {"cmapss": cmapss, "beijing": beijing, "summary": summary_set, "order": order_set}


def contract_features(frame: pd.DataFrame, cfg: PipelineConfig) -> list[str]:
    """The features the flow trains on: the contract drops constant ones, and near-constant ones on request."""
    from lstm_pipeline.contract import near_constant_features

    spec = resolve_spec(frame, cfg.data)
    kept = [f for f in spec.features if frame[f].nunique(dropna=True) >= 2]
    if cfg.data.near_constant == "drop":
        flagged = set(near_constant_features(frame, kept))
        kept = [f for f in kept if f not in flagged]
    return kept


def run_set(bench: Bench, log=print) -> dict[str, Any]:
    """The walk-forward of one set: per model, the test metrics of each fold; then the final model's."""
    cfg = bench.cfg
    features = contract_features(bench.frame, cfg)
    spec = replace(resolve_spec(bench.frame, cfg.data), features=tuple(features))
    series = to_series(bench.frame, spec)
    length = int(cfg.window.length)
    index = make_windows(series, length, cfg.window.max_gap)
    folds = make_folds(series, index, cfg.split)
    per_model: dict[str, list[dict[str, float]]] = {}
    trained: list[dict[str, Any]] = []
    for fold in folds:
        fw = fold_windows(series, index, fold, length)
        res = resample(fw.train, cfg.resample, cfg.train.seed)
        started = time.perf_counter()
        lstm = fit_model(res.windows, fw.val, cfg.model, cfg.train, cfg.resample, res.pos_weight)
        r = lstm.results[0]
        s = evaluate_fold(lstm, fw.train, fw.val, fw.test, cfg.evaluate.threshold_metric, fit=False)
        per_model.setdefault("lstm", []).append({**s.metrics, "threshold": s.threshold})
        trained.append({"best_step": r.best_step, "schedule_steps": r.schedule_steps, "threshold": s.threshold,
                        "evaluations": len(r.history), "seconds": time.perf_counter() - started})
        log(f"  {bench.name} fold {fold.k}: lstm PR-AUC {s.metrics['pr_auc']:.4f} MCC {s.metrics['mcc']:.4f} "
            f"(best step {r.best_step} of {r.history[-1]['step']} run, budget {r.schedule_steps}, "
            f"{time.perf_counter() - started:.0f} s)")
        for name in cfg.evaluate.baselines:
            b = evaluate_fold(make_baseline(name, cfg.train.seed, cfg.evaluate.baseline_max_windows),
                              fw.train, fw.val, fw.test, cfg.evaluate.threshold_metric)
            per_model.setdefault(name, []).append({**b.metrics, "threshold": b.threshold})
    out = {"models": per_model, "trained": trained, "features": features}
    started = time.perf_counter()
    plan = final_plan(trained)
    scorer = fit_final(series, index, cfg, threshold=plan["threshold"], steps=plan["steps"],
                       schedule_steps=plan["schedule_steps"], hold_out=cfg.split.val_fraction)
    out["final"] = dict(scorer.evaluation)
    log(f"  {bench.name} final: {json.dumps(out['final'])} ({time.perf_counter() - started:.0f} s)")
    if bench.name == "cmapss":
        out["published"] = published_protocol(scorer, cfg, features, per_model)
        log(f"  cmapss published protocol: {json.dumps(out['published'])}")
    return out


def final_plan(trained: list[dict[str, Any]]) -> dict[str, Any]:
    """What the flow's aggregate hands the refit: the folds' median best step and budget, median threshold."""
    return {"steps": max(0, int(statistics.median(t["best_step"] for t in trained))),
            "schedule_steps": int(statistics.median(t["schedule_steps"] for t in trained)),
            "threshold": float(statistics.median(t["threshold"] for t in trained))}


def published_protocol(scorer, cfg: PipelineConfig, features: list[str], per_model) -> dict[str, dict[str, float]]:
    """The final model and each baseline on the last window of each of the 93 long-enough test engines."""
    from lstm_app.demo import WINDOW, _protocol_windows

    train_s, train_idx, test_s, test_idx, last = _protocol_windows(cfg, features)
    raw = window_set(test_s.features, test_idx, WINDOW, last)
    with torch.inference_mode():
        lstm = scorer(torch.as_tensor(raw.gather())).numpy().astype(np.float64)
    keep = ("f1", "mcc", "pr_auc", "precision", "recall")
    out = {"lstm": {k: v for k, v in score_metrics(raw.y, lstm, scorer.threshold).items() if k in keep}}
    mean, scale = fit_scaler(train_s.features, train_idx.ends, WINDOW)
    train_ws = window_set(scale_rows(train_s.features, mean, scale), train_idx, WINDOW)
    test_ws = window_set(scale_rows(test_s.features, mean, scale), test_idx, WINDOW, last)
    for name in cfg.evaluate.baselines:
        threshold = statistics.median(f["threshold"] for f in per_model[name])
        model = make_baseline(name, cfg.train.seed).fit(train_ws)
        m = score_metrics(test_ws.y, model.predict_proba(test_ws), threshold)
        out[name] = {k: v for k, v in m.items() if k in keep}
    return out


def _pm(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def table(results: dict[str, dict[str, Any]]) -> str:
    """One markdown table: per set, every model's test PR-AUC and MCC (mean ± std over folds)."""
    lines = ["| set | model | PR-AUC | MCC |", "| --- | --- | --- | --- |"]
    for name, res in results.items():
        for model, folds in res["models"].items():
            bold = "**" if model == "lstm" else ""
            lines.append(f"| {name} | {bold}{model}{bold} | {_pm([f['pr_auc'] for f in folds])} | "
                         f"{_pm([f['mcc'] for f in folds])} |")
        fin = res.get("final")
        if fin:
            lines.append(f"| {name} | final model, latest {fin['windows']} windows | {fin['pr_auc']:.3f} | "
                         f"{fin['mcc']:.3f} |")
        for model, m in res.get("published", {}).items():
            lines.append(f"| {name} published protocol | {model} | {m['pr_auc']:.3f} | {m['mcc']:.3f} "
                         f"(F1 {m['f1']:.3f}) |")
    return "\n".join(lines)


def _value(text: str) -> Any:
    return yaml.safe_load(text)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default=",".join(SETS), help=f"comma-separated subset of {','.join(SETS)}")
    ap.add_argument("--epochs", type=int, default=None, help="train.epochs (default: train's default)")
    ap.add_argument("--min-steps", type=int, default=None, help="train.min_steps (default: train's default)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="any dotted config override, e.g. model.hidden=32 (repeatable)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--json", default=None, help="also write the raw results to this file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    extra: dict[str, Any] = dict(kv.split("=", 1) for kv in args.set)
    extra = {k: _value(v) for k, v in extra.items()}
    if args.epochs is not None:
        extra["train.epochs"] = args.epochs
    if args.min_steps is not None:
        extra["train.min_steps"] = args.min_steps
    results = {}
    for name in [s.strip() for s in args.sets.split(",") if s.strip()]:
        if name not in BUILDERS:
            ap.error(f"unknown set {name!r}; choose from {', '.join(SETS)}")
        started = time.perf_counter()
        results[name] = run_set(BUILDERS[name](extra))
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
    print(table(results))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"overrides": extra, "results": results}, fh, indent=1, default=float)
    return results


if __name__ == "__main__":
    main()
