"""Test PR-AUC along the training run: does the LSTM lose because early stopping keeps the wrong weights, or
because every weight it passes through generalises worse than the baselines?

    python -m benchmarks.trajectory --sets beijing
    python -m benchmarks.trajectory --sets beijing,cmapss --set train.lr=0.001 --threads 1

For each walk-forward fold of a ``benchmarks.quality`` set it trains the LSTM with ``train``'s defaults
through the whole step budget (early stopping switched off) and scores the fold's **test** windows with the
weights of every validation evaluation. That reading of the test set is a diagnosis only: nothing is chosen
on it. Early stopping is then replayed on the validation losses with the configured patience; the weights
it would have kept are the ones the flow keeps, since a run's steps up to its stop do not depend on the
patience. Per fold it prints the test PR-AUC at the kept step, the best over the whole run (an oracle no
pipeline may use) and at the end, and one JSON line with every evaluation.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from benchmarks.quality import BUILDERS, SETS, _value, contract_features
from lstm_core.data import resolve_spec, to_series
from lstm_core.ensemble import fit_model
from lstm_core.model import LSTMClassifier
from lstm_core.resample import resample
from lstm_core.splits import fold_windows, make_folds
from lstm_core.train import predict_proba
from lstm_core.windows import make_windows


class TestScorer:
    """A Checkpointer that keeps no state: at each evaluation it scores the test windows with the weights."""

    def __init__(self, test, n_features: int, model_cfg) -> None:
        self.test, self.net = test, LSTMClassifier(n_features, model_cfg)
        self.pr_auc: list[float] = []

    def load(self) -> None:
        return None

    def save(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["model"] if state["ema"] is None else
                                 {k.removeprefix("module."): v for k, v in state["ema"].items()
                                  if k.startswith("module.")})
        self.pr_auc.append(float(average_precision_score(self.test.y, predict_proba(self.net, self.test, "cpu"))))


def kept_evaluation(val_loss: list[float], patience: int) -> int:
    """The evaluation whose weights early stopping on the validation loss keeps (the run's own rule)."""
    best, stale, kept = np.inf, 0, 0
    for i, loss in enumerate(val_loss):
        if loss < best:
            best, stale, kept = loss, 0, i
        else:
            stale += 1
            if stale >= patience:
                break
    return kept


def run_set(name: str, extra: dict[str, Any]) -> list[dict[str, Any]]:
    bench = BUILDERS[name](extra)
    cfg = bench.cfg
    if cfg.train.select_on != "val_loss":
        raise SystemExit("benchmarks.trajectory replays early stopping on the validation loss only "
                         f"(train.select_on=val_loss), not {cfg.train.select_on}")
    spec = replace(resolve_spec(bench.frame, cfg.data), features=tuple(contract_features(bench.frame, cfg)))
    series = to_series(bench.frame, spec)
    length = int(cfg.window.length)
    index = make_windows(series, length, cfg.window.max_gap)
    whole = cfg.train.model_copy(update={"patience": cfg.train.evaluations + 1})
    out = []
    for fold in make_folds(series, index, cfg.split):
        fw = fold_windows(series, index, fold, length)
        res = resample(fw.train, cfg.resample, cfg.train.seed)
        scorer = TestScorer(fw.test, fw.train.n_features, cfg.model)
        model = fit_model(res.windows, fw.val, cfg.model, whole, cfg.resample, res.pos_weight,
                          checkpoint_for=lambda _i, s=scorer: s)
        history = model.results[0].history
        val_loss = [row["val_loss"] for row in history]
        kept = kept_evaluation(val_loss, cfg.train.patience)
        test = scorer.pr_auc
        best = int(np.argmax(test))
        row = {"set": name, "fold": fold.k, "train_windows": len(fw.train), "kept_step": history[kept]["step"],
               "test_pr_auc_kept": test[kept], "best_step": history[best]["step"], "test_pr_auc_best": test[best],
               "test_pr_auc_last": test[-1], "steps": [r["step"] for r in history], "val_loss": val_loss,
               "test_pr_auc": test}
        print(f"{name} fold {fold.k}: test PR-AUC {test[kept]:.3f} at the kept step {row['kept_step']}, "
              f"best {test[best]:.3f} at step {row['best_step']}, {test[-1]:.3f} at the end "
              f"(step {history[-1]['step']})", flush=True)
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="beijing", help=f"comma-separated subset of {','.join(SETS)}")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a dotted config override")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    extra = {k: _value(v) for k, v in (kv.split("=", 1) for kv in args.set)}
    rows = [row for name in args.sets.split(",") if name.strip() for row in run_set(name.strip(), extra)]
    for row in rows:
        print(json.dumps(row, default=float))
    return rows


if __name__ == "__main__":
    main()
