"""What a person reads: run names, fold params, metric tables, the summary JSON and its markdown."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstm_core.config import PipelineConfig
from lstm_core.scoring import scoring_series
from lstm_core.windows import WindowSet, window_ends
from lstm_pipeline import settings

SHOWN = ("pr_auc", "mcc", "roc_auc", "f1", "precision", "recall", "brier")


def run_name(config: PipelineConfig) -> str:
    """e.g. 'train_FD001-w50-smote': the data file, window and imbalance strategy at a glance."""
    stem = Path(config.data.path).stem if config.data.path else "data"
    return f"{stem}-w{config.window.length}-{config.resample.strategy}"


# MLflow's chart view makes a section of each key's part before its last '/' and sorts the sections by code
# point, so the upper-case 'LSTM' sections come before every lower-case one ('baselines/hgb', 'folds', 'train').
LSTM_SECTION = "LSTM"


def metric_key(model: str, key: str) -> str:
    """An MLflow metric key in sections: the LSTM's under 'LSTM/', each baseline's under 'baselines/<name>/', so
    the chart view shows the LSTM first and each baseline as a section of its own."""
    return f"{LSTM_SECTION}/{key}" if model == "lstm" else f"baselines/{model}/{key}"


def model_metrics(models: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{model: {key: value}}`` as sectioned MLflow metrics."""
    return {metric_key(m, k): v for m, values in models.items() for k, v in values.items()}


def curve_key(name: str) -> str:
    """An epoch-curve metric under 'train/' or 'val/' ('val_pr_auc' -> 'val/pr_auc', 'loss' -> 'train/loss')."""
    return f"val/{name.removeprefix('val_')}" if name.startswith("val_") else f"train/{name}"


# Shown first in the runs table of the MLflow UI (its columns follow the order the keys were logged).
KEY_METRICS = ("LSTM/pr_auc_mean", "LSTM/mcc_mean", "LSTM/pr_auc_gain_over_best_baseline")


def fold_params(summary: dict, resampled: dict) -> dict[str, Any]:
    out: dict[str, Any] = {"fold": summary["fold"], "purged": summary["purged"]}
    for part in ("train", "val", "test"):
        out.update({f"{part}.{k}": v for k, v in summary[part].items()})
    out.update({f"resample.{k}": v for k, v in resampled["info"].items()})
    return out


def metrics_table(models: dict[str, dict]) -> list[dict[str, Any]]:
    """One row per model: mean ± std over folds and the pooled value of each shown metric."""
    rows = []
    for name, vals in models.items():
        row: dict[str, Any] = {"model": name}
        for m in SHOWN:
            row[m] = f"{vals.get(f'{m}_mean', np.nan):.3f} ± {vals.get(f'{m}_std', np.nan):.3f}"
            row[f"{m} pooled"] = f"{vals.get(f'{m}_pooled', np.nan):.3f}"
        rows.append(row)
    return rows


def fold_table(folds: list[tuple[int, dict[str, dict[str, float]]]]) -> list[dict[str, Any]]:
    """One row per fold, narrow enough for a laptop screen: the LSTM's PR-AUC margin over the fold's best
    baseline first, then 'PR-AUC / MCC' of the LSTM and of every baseline, one column each.
    ``folds`` holds ``(k, {model: test metrics})`` pairs."""
    rows = []
    for k, models in folds:
        row: dict[str, Any] = {"fold": k}
        rivals = {n: m.get("pr_auc", np.nan) for n, m in models.items() if n != "lstm"}
        rivals = {n: v for n, v in rivals.items() if not np.isnan(v)}
        if rivals and "lstm" in models:
            best = max(rivals, key=rivals.get)
            row["LSTM − best PR-AUC"] = f"{models['lstm'].get('pr_auc', np.nan) - rivals[best]:+.3f}"
            row["best baseline"] = best
        for name, m in models.items():
            row[f"{name} PR-AUC / MCC"] = f"{m.get('pr_auc', np.nan):.3f} / {m.get('mcc', np.nan):.3f}"
        rows.append(row)
    return rows


# The episode metrics a person reads first (lstm_core.episodes defines each), in table order.
EPISODE_SHOWN = ("episode_recall", "lead_rows_median", "lead_hours_median", "false_alarms",
                 "false_alarms_per_day", "false_alarms_per_1k_windows", "episode_precision", "episode_f1",
                 "onset_pr_auc", "onset_mcc")


def episode_metric_keys(models: dict[str, dict[str, float]]) -> dict[str, float]:
    """``{model: {episode metric: value}}`` as sectioned MLflow metrics: 'LSTM/episode/<metric>' and
    'baselines/<name>/episode/<metric>'."""
    return {metric_key(m, f"episode/{k}"): float(v) for m, values in models.items() for k, v in values.items()
            if isinstance(v, (int, float)) and np.isfinite(v)}


def episode_sentence(m: dict[str, float]) -> str:
    """', 3/4 episodes caught (median lead 5 rows), 2 false alarms' for a fold's log line ('' without them)."""
    if not m:
        return ""
    lead = m.get("lead_rows_median", np.nan)
    lead_text = f" (median lead {lead:g} rows)" if np.isfinite(lead) else ""
    return (f"; {m['episodes_caught']:.0f}/{m['episodes']:.0f} episodes caught{lead_text}, "
            f"{m['false_alarms']:.0f} false alarms")


def episode_table(episodes: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """One row per model: each shown episode metric as mean ± std over folds, with the summed counts."""
    rows = []
    for name, vals in episodes.items():
        row: dict[str, Any] = {"model": name}
        for m in EPISODE_SHOWN:
            if f"{m}_mean" not in vals:
                continue
            row[m.replace("_", " ")] = _pm(vals[f"{m}_mean"], vals.get(f"{m}_std", np.nan))
        if "episodes_total" in vals:
            row["caught / episodes"] = f"{vals['episodes_caught_total']:.0f} / {vals['episodes_total']:.0f}"
            row["false alarms (all folds)"] = f"{vals.get('false_alarms_total', 0):.0f}"
        rows.append(row)
    return rows


def input_example(scorer, table: pd.DataFrame) -> np.ndarray:
    """One raw window (1, L, F) from the user's own data, for the registry's input example."""
    series = scoring_series(table, scorer.spec)
    ends = window_ends(series, scorer.spec["window"], max_gap=scorer.spec["max_gap"])[:1]
    empty = np.zeros(1, np.int8)
    return WindowSet(series.features, ends, scorer.spec["window"], empty, empty, empty.astype(bool)).gather()


def summary(run_id: str, config: PipelineConfig, loaded: dict, windows: dict, split: dict, folds: list[dict],
            agg: dict, registered: dict) -> dict[str, Any]:
    """Everything a user needs to judge the run, as plain JSON."""
    per_fold = []
    for f, s in zip(folds, split["folds"], strict=True):
        models = {"lstm": f["lstm"], **f["baselines"]["models"]}
        per_fold.append({**s, "best_epoch": f["trained"]["best_epoch"], "best_step": f["trained"].get("best_step"),
                         "metrics": {m: {**o["metrics"], "threshold": o["threshold"]} for m, o in models.items()},
                         "episodes": {m: o["episode"] for m, o in models.items() if o.get("episode")}})
    return {
        "config": config.model_dump(mode="json"),
        "data": {**loaded["fingerprint"], "features": loaded["features"], "windows": windows["windows"],
                 "window_positives": windows["positives"]},
        "folds": per_fold,
        "aggregate": agg["models"],
        "episodes": agg.get("episodes", {}),
        "best_baseline": agg["best_baseline"],
        # the registered model's own threshold and metrics on the windows it never trained on (refit_final);
        # the folds' median threshold only when its held-out slice could not choose one
        "final_model": {"epochs": agg["final_epochs"], "steps": agg.get("final_steps"),
                        "threshold": registered.get("final", {}).get("threshold", agg["final_threshold"]),
                        "evaluation": registered.get("final", {})},
        "mlflow": {"tracking_uri": settings.tracking_uri(), "run_id": run_id},
        "registered_model": registered,
    }


def verdict(s: dict[str, Any], bold: str = "**") -> str:
    """One sentence: does the LSTM beat the best baseline on mean test PR-AUC?"""
    lstm, rival = s["aggregate"]["lstm"], s["best_baseline"]
    if not rival:
        return "No baseline had a defined test PR-AUC; there is nothing to compare the LSTM with."
    theirs = s["aggregate"][rival]["pr_auc_mean"]
    gain = lstm["pr_auc_mean"] - theirs
    word = "beats" if gain > 0 else "does not beat"
    digits = 3 if abs(gain) >= 0.0005 else 4  # a gain that rounds to +0.000 is shown, not hidden
    return (f"The LSTM {bold}{word}{bold} the best baseline ({rival}) on mean test PR-AUC: "
            f"{lstm['pr_auc_mean']:.{digits}f} vs {theirs:.{digits}f} ({gain:+.{digits}f}) over {len(s['folds'])} folds.")


def start_sentence(s: dict[str, Any]) -> str | None:
    """How many folds kept the network's logistic start (``model.head_init: logistic``): in those folds training
    never beat the logistic baseline on validation, and the 'LSTM' scores as that baseline does. None otherwise."""
    model = s["config"]["model"]
    if model.get("head_init") != "logistic" or not model.get("head_summaries"):
        return None
    kept = [f["fold"] for f in s["folds"] if f.get("best_step") == 0]
    if not kept:
        return None
    which = "every fold" if len(kept) == len(s["folds"]) else f"fold{'s' if len(kept) > 1 else ''} " + \
        ", ".join(map(str, kept))
    return (f"The LSTM kept its start, the logistic regression on window summaries, in {which}: there training "
            "never beat it on validation, so the order of the rows added nothing the summaries did not tell.")


def final_sentence(s: dict[str, Any]) -> str | None:
    """The registered model's own numbers on the windows it never trained on, in one line (None if unmeasured)."""
    ev = s.get("final_model", {}).get("evaluation") or {}
    if not ev:
        return None
    sentence = (f"Final model on {ev.get('held_out', 'its held-out slice')} ({ev.get('windows', 0)} windows it never "
                f"trained on): PR-AUC {ev.get('pr_auc', float('nan')):.3f}, MCC {ev.get('mcc', float('nan')):.3f}, "
                f"F1 {ev.get('f1', float('nan')):.3f} at threshold {ev.get('threshold', float('nan')):.3f}.")
    if ev.get("steps") == 0 and s.get("config", {}).get("model", {}).get("head_init") == "logistic":
        sentence += (" It took no training step (the folds' median best step is 0): it is its logistic start, "
                     "the logistic regression on window summaries.")
    return sentence


def markdown_summary(s: dict[str, Any]) -> str:
    """The Prefect summary artifact: verdict, metric table, and where the model went."""
    lines = [f"# Walk-forward result: {len(s['folds'])} folds, {s['data']['windows']} windows", "", verdict(s)]
    lines += ["", "| model | PR-AUC | MCC | ROC-AUC | Brier |", "|---|---|---|---|---|"]
    for name, v in s["aggregate"].items():
        lines.append(f"| {name} | {v['pr_auc_mean']:.3f} ± {v['pr_auc_std']:.3f} | {v['mcc_mean']:.3f} ± "
                     f"{v['mcc_std']:.3f} | {v['roc_auc_mean']:.3f} | {v['brier_mean']:.4f} |")
    for sentence in (start_sentence(s), final_sentence(s)):
        if sentence:
            lines += ["", sentence]
    reg, ml = s["registered_model"], s["mlflow"]
    run = f"[{ml['run_id']}]({ml['run_url']})" if ml.get("run_url") else f"`{ml['run_id']}`"
    lines += ["", f"MLflow run {run} at `{ml['tracking_uri']}`."]
    if reg.get("unchanged"):
        lines.append(f"`{reg['name']}` is **unchanged since version {reg['version']}** (same data, config and code): "
                     "nothing registered.")
    elif reg.get("version"):
        version = f"[version {reg['version']}]({reg['url']})" if reg.get("url") else f"version {reg['version']}"
        lines.append(f"Registered `{reg['name']}` {version} with alias `{reg['alias']}`.")
    if reg.get("gate"):
        verdict_word = "**promoted to `champion`**" if reg["gate"]["promoted"] else "**not promoted**"
        lines += ["", f"Gate: {verdict_word}."] + [f"- {r}" for r in reg["gate"]["reasons"]]
    return "\n".join(lines)


def resample_sentence(info: dict[str, Any]) -> str:
    """What the resampler did to one fold's training windows, in one line."""
    head = info["strategy"]
    if "fallback_from" in info:
        head = f"{info['fallback_from']} fell back to {info['strategy']} ({info['note']})"
    parts = [f"{head}: {info['positives_before']} positive / {info['negatives_before']} negative training windows"]
    if "pos_weight" in info:
        parts.append(f"pos_weight {info['pos_weight']:.3g}")
    if "positives_after" in info:
        parts.append(f"after: {info['positives_after']} / {info['negatives_after']}, {info['synthetic']} added")
    if "members" in info:
        parts.append(f"{info['members']} networks, each on every positive and {info['negatives_per_member']} "
                     "drawn negatives")
    if "majority_in_sampler" in info:
        parts.append(f"memory budget: {info['majority_in_sampler']} majority windows entered the sampler")
    if "note" in info and "fallback_from" not in info:
        parts.append(str(info["note"]))
    return "; ".join(parts)


def compare_run_name(config: PipelineConfig) -> str:
    """e.g. 'compare-train_FD001-w50': one comparison of imbalance strategies on one file and window."""
    stem = Path(config.data.path).stem if config.data.path else "data"
    return f"compare-{stem}-w{config.window.length}"


def comparison_rows(strategies: dict[str, dict], baselines: dict[str, dict], best: str | None) -> list[dict]:
    """One record per strategy (its LSTM's test metrics over folds) and one for the best baseline.

    ``strategies[s]`` holds ``status`` and, when it ran, ``metrics`` (mean/std/pooled), ``seconds`` and ``added``.
    """
    none = strategies.get("none", {}).get("metrics", {}).get("pr_auc_mean", np.nan)
    rival = baselines.get(best, {}).get("pr_auc_mean", np.nan) if best else np.nan
    rows = []
    for name, out in strategies.items():
        m = out.get("metrics", {})
        pr = m.get("pr_auc_mean", np.nan)
        rows.append({"model": f"lstm + {name}", "strategy": name, "status": out["status"],
                     "pr_auc_mean": pr, "pr_auc_std": m.get("pr_auc_std", np.nan),
                     "mcc_mean": m.get("mcc_mean", np.nan), "mcc_std": m.get("mcc_std", np.nan),
                     "roc_auc_mean": m.get("roc_auc_mean", np.nan), "pr_auc_pooled": m.get("pr_auc_pooled", np.nan),
                     "pr_auc_vs_none": pr - none, "pr_auc_vs_best_baseline": pr - rival,
                     "added_windows_per_fold": out.get("added", np.nan), "train_seconds": out.get("seconds", np.nan),
                     "error": out.get("error", ""), **_episode_cells(out.get("episodes") or {})})
    if best:
        b = baselines[best]
        rows.append({"model": f"baseline: {best}", "strategy": "", "status": "baseline",
                     "pr_auc_mean": b["pr_auc_mean"], "pr_auc_std": b["pr_auc_std"], "mcc_mean": b["mcc_mean"],
                     "mcc_std": b["mcc_std"], "roc_auc_mean": b.get("roc_auc_mean", np.nan),
                     "pr_auc_pooled": b.get("pr_auc_pooled", np.nan), "pr_auc_vs_none": b["pr_auc_mean"] - none,
                     "pr_auc_vs_best_baseline": 0.0, "added_windows_per_fold": np.nan, "train_seconds": np.nan,
                     "error": "", **_episode_cells({k.removeprefix("episode/"): v for k, v in b.items()
                                                    if k.startswith("episode/")})})
    return rows


def _episode_cells(episodes: dict[str, float]) -> dict[str, float]:
    """The episode metrics a comparison row carries (NaN without row labels)."""
    return {k: episodes.get(k, np.nan) for k in ("episode_recall_mean", "episode_recall_std", "onset_pr_auc_mean",
                                                  "onset_pr_auc_std", "false_alarms_total")}


def _pm(mean: float, std: float) -> str:
    return "–" if not np.isfinite(mean) else f"{mean:.3f} ± {std:.3f}"


def _signed(value: float) -> str:
    return "–" if not np.isfinite(value) else f"{value:+.3f}"


def comparison_table(rows: list[dict]) -> list[dict[str, str]]:
    """The rows as a person reads them (the Prefect table artifact and the CLI)."""
    return [{"model": r["model"], "PR-AUC": _pm(r["pr_auc_mean"], r["pr_auc_std"]),
             "MCC": _pm(r["mcc_mean"], r["mcc_std"]), "ΔPR-AUC vs none": _signed(r["pr_auc_vs_none"]),
             "ΔPR-AUC vs best baseline": _signed(r["pr_auc_vs_best_baseline"]),
             "episode recall": _pm(r.get("episode_recall_mean", np.nan), r.get("episode_recall_std", np.nan)),
             "onset PR-AUC": _pm(r.get("onset_pr_auc_mean", np.nan), r.get("onset_pr_auc_std", np.nan)),
             "false alarms": "–" if not np.isfinite(r.get("false_alarms_total", np.nan)) else
             f"{r['false_alarms_total']:.0f}",
             "train s": "–" if not np.isfinite(r["train_seconds"]) else f"{r['train_seconds']:.0f}",
             "status": r["status"] if not r["error"] else f"{r['status']}: {r['error']}"} for r in rows]


def comparison_verdict(rows: list[dict]) -> str:
    """Which strategy wins on mean test PR-AUC, by how much over 'none', and is that more than fold noise?"""
    ran = [r for r in rows if r["status"] == "ok" and np.isfinite(r["pr_auc_mean"])]
    if not ran:
        return "No strategy finished; see the errors in the table."
    win = max(ran, key=lambda r: r["pr_auc_mean"])
    text = f"Best strategy on mean test PR-AUC: {win['strategy']} ({_pm(win['pr_auc_mean'], win['pr_auc_std'])})"
    none = next((r for r in ran if r["strategy"] == "none"), None)
    if none is not None and win is not none:
        gain = win["pr_auc_mean"] - none["pr_auc_mean"]
        noise = max(win["pr_auc_std"], none["pr_auc_std"])
        text += (f", {gain:+.3f} over none; " + ("more than" if gain > noise else "within")
                 + f" the fold-to-fold spread ({noise:.3f})")
    elif none is not None:
        text += ": no resampling strategy beats none"
    base = next((r for r in rows if r["status"] == "baseline"), None)
    if base is not None:
        text += f". Best baseline: {base['model'].removeprefix('baseline: ')} ({_pm(base['pr_auc_mean'], base['pr_auc_std'])})"
    return text + "."
