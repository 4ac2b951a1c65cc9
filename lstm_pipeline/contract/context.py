"""The helper columns, and what the describers read.

Rules that hold per entity or per row pair (time strictly increasing within each entity, rows per entity,
one kind of time zone) have no GX expectation of their own. They are computed here as helper columns
('timestamp: step', 'machine: rows'), and plain GX expectations validate those, so every result still
lands in GX's report and its Data Docs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstm_core.data import DataSpec, Times, read_times
from lstm_pipeline.contract.suite import Facts, Helpers, Rules


@dataclass
class Context:
    """What the describers read: the validated frame with its helper columns, and how it was read."""

    frame: pd.DataFrame
    spec: DataSpec
    rules: Rules
    facts: Facts
    helpers: Helpers
    times: Times | None = None
    previous: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,) previous row, same entity


def build_context(frame: pd.DataFrame, spec: DataSpec, rules: Rules, absent: frozenset[str]) -> Context:
    """Read the time column, add the helper columns, and note what decides the suite's shape."""
    h = Helpers.of(spec)
    text = frozenset(c for c in frame.columns
                     if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ctx = Context(frame, spec, rules, Facts(absent=absent, text=text), h)
    if spec.time_col in absent or (spec.entity_col and spec.entity_col in absent):
        return ctx
    values = frame[spec.time_col]
    times = read_times(values)
    parsed = not (pd.api.types.is_integer_dtype(values) or pd.api.types.is_datetime64_any_dtype(values))
    helpers: dict[str, Any] = {}
    codes = entity_codes(frame, spec)
    step, previous = _steps(times, codes)
    helpers[h.step] = step / 1e9 if times.is_datetime else step
    sizes = np.bincount(codes[codes >= 0]) if (codes >= 0).any() else np.zeros(0, np.int64)
    helpers[h.rows] = np.where(codes >= 0, sizes[np.maximum(codes, 0)] if len(sizes) else 0, np.nan)
    present = values.notna().to_numpy()
    zoned = times.zones is not None and bool((times.zones != None).any())  # noqa: E711
    if parsed:
        helpers[h.parses] = np.where(present, np.where(times.unparsable, 0.0, 1.0), np.nan)
    if zoned:
        has = (times.zones != None).astype(np.float64)  # noqa: E711
        helpers[h.zoned] = np.where(present, has, np.nan)
        helpers[h.offset] = pd.Series(times.zones, dtype="object")
    majority = bool(zoned and np.nanmean(helpers[h.zoned]) >= 0.5)
    facts = Facts(absent, text, parsed, times.is_datetime, zoned, majority)
    frame = pd.concat([frame, pd.DataFrame(helpers, index=frame.index)], axis=1)
    return Context(frame, spec, rules, facts, h, times, previous)


def entity_codes(frame: pd.DataFrame, spec: DataSpec) -> np.ndarray:
    """Entity code per row in order of first appearance; -1 where the entity is missing."""
    if not spec.entity_col:
        return np.zeros(len(frame), np.int64)
    return pd.factorize(frame[spec.entity_col], sort=False)[0].astype(np.int64)


def _steps(times: Times, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Time since the previous row of the same entity, in file order (NaN for its first row), and that row."""
    n = len(codes)
    order = np.argsort(codes, kind="stable")  # each entity's rows together, in file order
    same = np.zeros(n, bool)
    same[1:] = (codes[order][1:] == codes[order][:-1]) & (codes[order][1:] >= 0)
    same[1:] &= times.valid[order][1:] & times.valid[order][:-1]
    step_sorted = np.full(n, np.nan)
    vals = times.values[order]
    step_sorted[1:][same[1:]] = (vals[1:] - vals[:-1])[same[1:]].astype(np.float64)
    prev_sorted = np.full(n, -1, np.int64)
    prev_sorted[1:][same[1:]] = order[:-1][same[1:]]
    step, previous = np.empty(n), np.empty(n, np.int64)
    step[order], previous[order] = step_sorted, prev_sorted
    return step, previous
