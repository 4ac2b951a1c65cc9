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


def near_constant_features(df: pd.DataFrame, features: Iterable[str]) -> list[str]:
    """Features whose most common value fills at least NEAR_CONSTANT_SHARE of the non-missing rows, with at most
    NEAR_CONSTANT_DISTINCT distinct values per row (constant features are not counted here: they fail not_constant).

    Example: 98 rows of 21.61 and 2 of 21.60 → share 0.98, 2 distinct values per 100 rows → near-constant.
    """
    out = []
    for col in features:
        if col not in df.columns or not pd.api.types.is_numeric_dtype(df[col]):
            continue
        values = df[col].dropna()
        counts = values.value_counts()
        if len(counts) < 2:
            continue
        if counts.iloc[0] >= NEAR_CONSTANT_SHARE * len(values) and len(counts) <= NEAR_CONSTANT_DISTINCT * len(values):
            out.append(col)
    return out


def near_constant_checks(df: pd.DataFrame, spec: DataSpec, constant: set[str], config: PipelineConfig) -> list[Check]:
    """One warning check per feature that is not constant: near-constant or not, and what happens to it."""
    features = [f for f in dict.fromkeys(spec.features) if f in df.columns and f not in constant]
    flagged = set(near_constant_features(df, features))
    fate = "dropped from the features" if config.data.near_constant == "drop" else "kept (data.near_constant=keep)"
    checks = []
    for col in features:
        if not pd.api.types.is_numeric_dtype(df[col]):
            continue
        values = df[col].dropna()
        counts = values.value_counts()
        share = float(counts.iloc[0] / len(values)) if len(values) else 0.0
        observed = f"{len(counts)} distinct values, the most common in {share:.1%} of rows"
        if col in flagged:
            observed += f": {fate}"
        checks.append(Check("near_constant (pandas: most common value's share, distinct values)", col,
                            col not in flagged, observed, "warning", name="not near-constant"))
    return checks
