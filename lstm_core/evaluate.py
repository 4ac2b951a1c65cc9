"""Walk-forward scoring, one function for every model: the LSTM and each baseline alike.

Each model is fitted on the training part (early stopping on the validation slice), its threshold is chosen
on the calibration slice (or on the validation slice when the fold has none), and that threshold is applied
unchanged to the test part. Nothing is fitted on test windows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstm_core.baselines import WindowModel
from lstm_core.episodes import RowLabels, aggregate_episodes, choose_episode_threshold, episode_metrics
from lstm_core.metrics import METRIC_NAMES, aggregate, choose_threshold, pooled_metrics, score_metrics
from lstm_core.windows import WindowSet


@dataclass(frozen=True)
class FoldScore:
    """One model on one fold: the validation-chosen threshold, test metrics and test scores."""

    model: str
    threshold: float
    metrics: dict[str, float]
    test_scores: np.ndarray
    episode: dict[str, float] = field(default_factory=dict)  # lstm_core.episodes metrics; empty without row labels


def evaluate_fold(model: WindowModel, train: WindowSet, val: WindowSet, test: WindowSet,
                  threshold_metric: str = "mcc", fit: bool = True, calib: WindowSet | None = None,
                  labels: RowLabels | None = None, zone_rows: int | None = None) -> FoldScore:
    """Fit (unless already fitted) on ``train`` with ``val``; choose the threshold on ``calib`` (on ``val``
    when there is no calibration slice); score ``test``.

    With ``labels`` (the series' row-level target, which the windows' ``ends`` index) the episode metrics
    are computed beside the window metrics, and ``threshold_metric='episode_f1'`` is possible."""
    if fit:
        model.fit(train, val)
    chooser = calib if calib is not None and len(calib) else val
    chooser_scores = model.predict_proba(chooser)
    if threshold_metric == "episode_f1":
        if labels is None:
            raise ValueError("evaluate.threshold_metric=episode_f1 needs the series' row labels")
        threshold = choose_episode_threshold(labels, chooser.ends, chooser_scores, zone_rows)
    else:
        threshold = choose_threshold(chooser.y, chooser_scores, threshold_metric)
    scores = model.predict_proba(test)
    metrics = score_metrics(test.y, scores, threshold)
    episode = episode_metrics(labels, test.ends, scores, threshold, zone_rows) if labels is not None else {}
    return FoldScore(model.name, threshold, metrics, scores, episode)


def summarise_models(y_by_fold: list[np.ndarray], per_fold: list[dict[str, FoldScore]]) -> dict[str, dict]:
    """Per model: mean ± std of each metric over folds, and the metrics pooled over all test windows."""
    out: dict[str, dict] = {}
    for name in per_fold[0]:
        scores = [fold[name] for fold in per_fold]
        out[name] = {
            **aggregate([s.metrics for s in scores]),
            **{f"{k}_pooled": v for k, v in pooled_metrics(y_by_fold, [s.test_scores for s in scores],
                                                          [s.threshold for s in scores]).items()
               if k in METRIC_NAMES},
        }
    return out


def summarise_episodes(per_fold: list[dict[str, FoldScore]]) -> dict[str, dict]:
    """Per model: the episode metrics' mean ± std over folds and their summed counts (empty without row labels)."""
    return {name: aggregate_episodes([fold[name].episode for fold in per_fold])
            for name in per_fold[0] if all(fold[name].episode for fold in per_fold)}


def best_baseline(summary: dict[str, dict], lstm: str = "lstm", metric: str = "pr_auc_mean") -> str | None:
    """The baseline with the highest mean test PR-AUC (undefined values lose)."""
    rivals = {k: v.get(metric, float("nan")) for k, v in summary.items() if k != lstm}
    rivals = {k: v for k, v in rivals.items() if np.isfinite(v)}
    return max(rivals, key=rivals.get) if rivals else None
