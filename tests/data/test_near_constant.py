"""The near-constant rule: one value in at least 95% of the rows and at most 10% distinct values per row."""
from __future__ import annotations

import numpy as np
import pandas as pd

from lstm_core.config import load_config
from lstm_core.data import DataSpec
from lstm_pipeline.contract import near_constant_features, run_contract


def table() -> pd.DataFrame:
    n = 100
    return pd.DataFrame({
        "t": np.arange(n),
        # 98 × 21.61 and 2 × 21.60: share 0.98 ≥ 0.95, 2 distinct ≤ 10 → near-constant (C-MAPSS s6)
        "flat": [21.61] * 98 + [21.60] * 2,
        # a 0/1 indicator at 50/50: share 0.5 → not near-constant
        "flag": [0.0, 1.0] * 50,
        # 95 zeros and 5 distinct other values: share exactly 0.95, 6 distinct ≤ 10 → near-constant (the boundary)
        "rain": [0.0] * 95 + [1.0, 2.0, 3.0, 4.0, 5.0],
        # 94 zeros: share 0.94 < 0.95 → not near-constant
        "wet": [0.0] * 94 + [1.0] * 6,
        "const": [3.0] * 100,  # constant: not_constant's business, never counted here
        "y": [0] * 99 + [1],
    })


def test_near_constant_rule_by_hand() -> None:
    df = table()
    assert near_constant_features(df, ["flat", "flag", "rain", "wet", "const"]) == ["flat", "rain"]
    # 20 rows: 19 zeros and one 1.0 → share 0.95, 2 distinct values = 10% of the rows → flagged;
    # 18 zeros and two others → share 0.90 → kept
    small = pd.DataFrame({"x": [0.0] * 19 + [1.0], "w": [0.0] * 18 + [1.0, 2.0]})
    assert near_constant_features(small, ["x", "w"]) == ["x"]


def test_contract_flags_them_and_the_config_drops_or_keeps_them() -> None:
    df = table()[["t", "flat", "flag", "wet", "y"]]
    spec = DataSpec("t", None, ("flat", "flag", "wet"), "y", "label", 0)
    for choice, dropped in (("drop", ("flat",)), ("keep", ())):
        cfg = load_config(None, {"data.label_col": "y", "data.time_col": "t", "data.near_constant": choice,
                                 "window.length": 4})
        report = run_contract(df, spec, cfg)
        assert report.dropped == dropped
        flagged = [c for c in report.warnings() if c.name == "not near-constant"]
        assert [c.column for c in flagged] == ["flat"]
        assert flagged[0].observed.startswith("2 distinct values, the most common in 98.0% of rows")
        assert report.success  # a warning: the contract holds
