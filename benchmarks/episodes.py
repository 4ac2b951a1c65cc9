"""Episode metrics on the bundled data, and what ``data.label_delay`` does to the persistence baseline.

    python -m benchmarks.episodes                          # C-MAPSS and Beijing, baselines only (about a minute)
    python -m benchmarks.episodes --lstm --set train.min_steps=300   # the LSTM too, on a short step budget
    python -m benchmarks.episodes --sets segments          # label_delay on a synthetic label-mode set

It calls lstm_core directly and mirrors the training flow's walk-forward: windows, folds, the fold scaler,
every baseline fitted on the training part, its threshold chosen on validation, the window metrics and the
episode metrics (lstm_core.episodes) on the same test windows. Prints the two tables and writes JSON.

``segments``: one entity of 20,000 rows with contiguous anomaly segments (9 of 40-200 rows, 5.4% of
rows), label mode, and a feature that sits 0.5 standard deviations higher inside a segment, so a model that
reads the features alone can only do so much. Persistence is scored with label_delay 0, 1, 5, 20, 50 and never.
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.quality import Bench, beijing, cmapss, contract_features
from lstm_core.baselines import make_baseline
from lstm_core.config import load_config
from lstm_core.data import resolve_spec, to_series
from lstm_core.episodes import RowLabels
from lstm_core.evaluate import evaluate_fold, summarise_episodes, summarise_models
from lstm_core.resample import resample
from lstm_core.splits import fold_windows, make_folds
from lstm_core.train import LSTMWindowModel, fit_lstm
from lstm_core.windows import make_windows

BASELINES = ("prior", "persistence", "logistic", "hgb")


def segments_frame(rows: int = 20_000, seed: int = 0) -> pd.DataFrame:
    """Label mode, contiguous anomaly segments; feature 'x' shifts by 0.5 inside them, 'noise' never does."""
    rng = np.random.default_rng(seed)
    label = np.zeros(rows, np.int8)
    t = 200
    while t < rows - 200:
        gap = int(rng.integers(1_000, 3_000))
        length = int(rng.integers(40, 200))
        t += gap
        label[t:t + length] = 1
        t += length
    x = rng.normal(size=rows) + 0.5 * label
    return pd.DataFrame({"time": np.arange(rows), "x": x, "noise": rng.normal(size=rows), "label": label})


def segments(extra: dict[str, Any]) -> Bench:
    cfg = load_config(None, {"data.time_col": "time", "data.label_col": "label", "window.length": 24,
                             "split.by": "time", "split.folds": 3, **extra})
    return Bench("segments", segments_frame(), cfg)


def walk_forward(bench: Bench, lstm: bool, log=print, baselines: tuple[str, ...] = BASELINES) -> dict[str, Any]:
    """Window and episode metrics per model over the walk-forward folds of one set."""
    cfg = bench.cfg
    spec = replace(resolve_spec(bench.frame, cfg.data), features=tuple(contract_features(bench.frame, cfg)))
    series = to_series(bench.frame, spec)
    length = int(cfg.window.length)
    index = make_windows(series, length, cfg.window.max_gap, cfg.data.known_after)
    labels = RowLabels(series.target, series.entity, series.time, series.time_is_datetime, spec.mode, spec.lookahead)
    per_fold, ys = [], []
    for fold in make_folds(series, index, cfg.split):
        fw = fold_windows(series, index, fold, length)
        scores = {}
        if lstm:
            started = time.perf_counter()
            res = resample(fw.train, cfg.resample, cfg.train.seed)
            model = LSTMWindowModel(cfg.model, cfg.train, res.pos_weight)
            model.result = fit_lstm(res.windows, fw.val, cfg.model, cfg.train, res.pos_weight)
            scores["lstm"] = evaluate_fold(model, fw.train, fw.val, fw.test, cfg.evaluate.threshold_metric,
                                           fit=False, labels=labels, zone_rows=cfg.evaluate.episode_zone_rows)
            log(f"  {bench.name} fold {fold.k}: lstm trained in {time.perf_counter() - started:.0f} s")
        for name in baselines:
            scores[name] = evaluate_fold(make_baseline(name, cfg.train.seed, cfg.evaluate.baseline_max_windows),
                                         fw.train, fw.val, fw.test, cfg.evaluate.threshold_metric, labels=labels,
                                         zone_rows=cfg.evaluate.episode_zone_rows)
        per_fold.append(scores)
        ys.append(fw.test.y)
        log(f"  {bench.name} fold {fold.k}: " + ", ".join(
            f"{n} PR-AUC {s.metrics['pr_auc']:.3f} recall {s.episode['episode_recall']:.2f}" for n, s in scores.items()))
    return {"windows": summarise_models(ys, per_fold), "episodes": summarise_episodes(per_fold),
            "folds": [{n: {**s.episode, "pr_auc": s.metrics["pr_auc"], "mcc": s.metrics["mcc"]}
                       for n, s in f.items()} for f in per_fold]}


def label_delay_effect(delays: list[int | str], log=print) -> dict[str, dict[str, float]]:
    """Persistence (and the prior, for scale) on the segments set for each label_delay."""
    out = {}
    for delay in delays:
        bench = segments({"data.label_delay": delay, "evaluate.baselines": ["prior", "persistence"]})
        res = walk_forward(bench, lstm=False, log=lambda *_: None, baselines=("prior", "persistence"))
        p = res["windows"]["persistence"]
        e = res["episodes"]["persistence"]
        out[str(delay)] = {"pr_auc_mean": p["pr_auc_mean"], "pr_auc_std": p["pr_auc_std"], "mcc_mean": p["mcc_mean"],
                           "episode_recall_mean": e["episode_recall_mean"],
                           "onset_pr_auc_mean": e["onset_pr_auc_mean"],
                           "prior_pr_auc_mean": res["windows"]["prior"]["pr_auc_mean"],
                           "episode_precision_mean": e["episode_precision_mean"],
                           "false_alarms_total": e["false_alarms_total"]}
        log(f"  label_delay {delay}: persistence PR-AUC {p['pr_auc_mean']:.3f} ± {p['pr_auc_std']:.3f}, "
            f"MCC {p['mcc_mean']:.3f}, episode recall {e['episode_recall_mean']:.2f}, onset PR-AUC "
            f"{e['onset_pr_auc_mean']:.3f}, false alarms {e['false_alarms_total']:.0f}; prior PR-AUC "
            f"{res['windows']['prior']['pr_auc_mean']:.3f}")
    return out


SHOWN = ("episode_recall", "lead_rows_median", "false_alarms_per_day", "false_alarms_per_1k_windows",
         "episode_f1", "onset_pr_auc", "onset_mcc")


def print_tables(name: str, res: dict[str, Any]) -> None:
    print(f"\n{name}: windows (mean ± std over folds)")
    print("| model | PR-AUC | MCC |\n|---|---|---|")
    for m, v in res["windows"].items():
        print(f"| {m} | {v['pr_auc_mean']:.3f} ± {v['pr_auc_std']:.3f} | {v['mcc_mean']:.3f} ± {v['mcc_std']:.3f} |")
    shown = [k for k in SHOWN if any(f"{k}_mean" in v for v in res["episodes"].values())]
    print(f"\n{name}: episodes (mean ± std over folds)")
    print("| model | caught / episodes | " + " | ".join(shown) + " |\n" + "|---" * (len(shown) + 2) + "|")
    for m, v in res["episodes"].items():
        cells = [f"{v[f'{k}_mean']:.3f} ± {v[f'{k}_std']:.3f}" for k in shown]
        print(f"| {m} | {v['episodes_caught_total']:.0f} / {v['episodes_total']:.0f} | " + " | ".join(cells) + " |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="cmapss,beijing,segments")
    ap.add_argument("--lstm", action="store_true", help="train the LSTM too (minutes)")
    ap.add_argument("--set", action="append", default=[], help="config override KEY=VALUE (YAML value)")
    ap.add_argument("--out", default="benchmarks/episodes.json")
    args = ap.parse_args()
    import yaml

    extra = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
    result: dict[str, Any] = {}
    for name in args.sets.split(","):
        if name == "segments":
            result["label_delay"] = label_delay_effect([0, 1, 5, 20, 50, "never"])
            continue
        bench = {"cmapss": cmapss, "beijing": beijing}[name](extra)
        result[name] = walk_forward(bench, args.lstm)
        print_tables(name, result[name])
    with open(args.out, "w") as fh:
        json.dump(result, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
