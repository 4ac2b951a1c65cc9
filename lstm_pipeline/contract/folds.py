"""The dry run of the missing-value policy, the windows and the folds: no GX, the training flow's own functions."""
from __future__ import annotations

import pandas as pd

from lstm_core.config import PipelineConfig
from lstm_core.data import DataError, DataSpec
from lstm_pipeline.contract.report import Check


def fold_checks(df: pd.DataFrame, spec: DataSpec, config: PipelineConfig) -> list[Check]:
    """Dry-run the missing-value policy, the windows and the folds: does every fold part hold positives?

    The training flow makes the same check in its split task; ``validate`` runs it so that a user learns it
    before a training run.
    """
    from lstm_core.autocorr import resolve_length
    from lstm_core.data import apply_missing, to_series
    from lstm_core.splits import check_fold_positives, make_folds
    from lstm_core.windows import make_windows

    need = config.data.min_positives
    name = f"at least {need} positive window(s) in every fold's training and test part"
    try:
        rows, _ = apply_missing(df, spec, config.data.missing, config.data.ffill_limit)
        series = to_series(rows, spec)
        config, _ = resolve_length(series, config)  # window: auto reads rows before the first test block only
        index = make_windows(series, config.window.length, config.window.max_gap)
        folds = make_folds(series, index, config.split)
    except DataError as exc:
        return [Check("walk_forward_folds", None, False, str(exc), name="the folds can be cut")]
    problems = check_fold_positives(series, index, folds, need)
    if problems:
        return [Check("fold_positives", None, False, p, name=name) for p in problems]
    fewest = {p: min(int(index.y[getattr(f, p)].sum()) for f in folds) for p in ("train", "test")}
    observed = (f"{len(folds)} folds over {len(index.ends)} windows; fewest positives: training {fewest['train']}, "
                f"test {fewest['test']}")
    return [Check("fold_positives", None, True, observed, name=name)]
