"""Near-constant features, a rule computed with pandas rather than GX.

A near-constant feature has one value in at least ``NEAR_CONSTANT_SHARE`` of the rows and at most
``NEAR_CONSTANT_DISTINCT`` distinct values per row. It is a warning; ``data.near_constant`` says whether it is
dropped or kept.
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from lstm_core.config import PipelineConfig
from lstm_core.data import DataSpec
from lstm_pipeline.contract.report import Check

# near-constant: the most common value fills at least this share of the non-missing rows ...
NEAR_CONSTANT_SHARE = 0.95
# ... and there are at most this many distinct values per row (a continuous sensor with a long rest is not one)
NEAR_CONSTANT_DISTINCT = 0.10


def _counts(values: pd.Series) -> tuple[int, int, int]:
    """(non-missing rows, distinct values, rows of the most common value) of a numeric column.

    Only these three numbers decide the rule; a full ``value_counts`` table (a hash table and a Series the size of
    the column for a continuous sensor) is not needed for them."""
    present = values.dropna()
    if len(present) == 0:
        return 0, 0, 0
    counts = present.value_counts(sort=False).to_numpy()
    return len(present), len(counts), int(counts.max())


def _is_near_constant(n: int, distinct: int, top: int) -> bool:
    return distinct >= 2 and top >= NEAR_CONSTANT_SHARE * n and distinct <= NEAR_CONSTANT_DISTINCT * n


def near_constant_features(df: pd.DataFrame, features: Iterable[str]) -> list[str]:
    """Features whose most common value fills at least NEAR_CONSTANT_SHARE of the non-missing rows, with at most
    NEAR_CONSTANT_DISTINCT distinct values per row (constant features are not counted here: they fail not_constant).

    Example: 98 rows of 21.61 and 2 of 21.60 → share 0.98, 2 distinct values per 100 rows → near-constant.
    """
    return [col for col in features
            if col in df.columns and pd.api.types.is_numeric_dtype(df[col]) and _is_near_constant(*_counts(df[col]))]


def near_constant_checks(df: pd.DataFrame, spec: DataSpec, constant: set[str], config: PipelineConfig) -> list[Check]:
    """One warning check per feature that is not constant: near-constant or not, and what happens to it.

    Each column is counted once (at 10M rows, counting every value of 32 columns twice took minutes)."""
    features = [f for f in dict.fromkeys(spec.features) if f in df.columns and f not in constant]
    fate = "dropped from the features" if config.data.near_constant == "drop" else "kept (data.near_constant=keep)"
    checks = []
    for col in features:
        if not pd.api.types.is_numeric_dtype(df[col]):
            continue
        n, distinct, top = _counts(df[col])
        flagged = _is_near_constant(n, distinct, top)
        share = float(top / n) if n else 0.0
        observed = f"{distinct} distinct values, the most common in {share:.1%} of rows"
        if flagged:
            observed += f": {fate}"
        checks.append(Check("near_constant (pandas: most common value's share, distinct values)", col,
                            not flagged, observed, "warning", name="not near-constant"))
    return checks
