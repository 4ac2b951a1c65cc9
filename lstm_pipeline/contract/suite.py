"""The Great Expectations suite: one expectation per rule and column, built from the config's knobs (Rules),
the resolved DataSpec and what the table itself decides (Facts).

Rules that hold per entity or per row pair are expectations on helper columns (Helpers names them); the
context module computes those columns. Each expectation carries its rule as ``meta["check"]``, which is how
its result is described afterwards.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lstm_core.config import PipelineConfig
from lstm_core.data import DataError, DataSpec
from lstm_core.windows import gap_limit

if TYPE_CHECKING:
    import great_expectations as gx

# numpy dtypes by name; pandas' nullable dtypes by class name, since GX looks them up as attributes of pandas
# ("Int64" is not one, "Int64Dtype" is). bool is left out, as resolve_spec leaves it out of default features.
NUMERIC_TYPES: tuple[str, ...] = (
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64",
    "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype",
    "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype", "Float32Dtype", "Float64Dtype",
)  # fmt: skip
TARGET_VALUES = (0, 1)
RARE = 0.5  # above this prevalence the target is not a rare event (a warning)
SUITE_NAME = "lstm-pipeline-data-contract"


@dataclass(frozen=True)
class Rules:
    """The contract's knobs, read from the config tree (their defaults live there, nowhere else)."""

    missing: str
    max_null_fraction: float
    min_prevalence: float
    max_prevalence: float
    min_rows: int  # rows an entity needs for one window with a known target
    max_gap: float | str | None
    # A file to score has no label or event column: no target checks, no feature dropped (the model's
    # features are fixed), and an entity needs only one window's rows.
    scoring: bool = False

    @classmethod
    def from_config(cls, config: PipelineConfig, scoring: bool = False) -> Rules:
        d = config.data
        tail = d.horizon if d.mode == "event" and not scoring else 0
        return cls(d.missing, d.max_null_fraction, d.min_prevalence, d.max_prevalence,
                   config.window.min_length + tail, config.window.max_gap, scoring)

    def columns(self, spec: DataSpec) -> list[str]:
        """The columns the contract checks: every required one, less the target when scoring."""
        return list(dict.fromkeys(spec.required[:-1] if self.scoring else spec.required))


@dataclass(frozen=True)
class Facts:
    """What the table itself decides about the suite: absent and text columns, and the kind of time."""

    absent: frozenset[str] = frozenset()
    text: frozenset[str] = frozenset()  # required columns whose dtype is not numeric
    time_parsed: bool = False  # the time column is neither integer nor datetime typed: its values are parsed
    time_is_datetime: bool = False
    zones: bool = False  # some text times carry a UTC offset
    majority_zoned: bool = False


@dataclass(frozen=True)
class Helpers:
    """Names of the helper columns computed for the per-entity rules."""

    step: str
    rows: str
    parses: str
    zoned: str
    offset: str

    @classmethod
    def of(cls, spec: DataSpec) -> Helpers:
        t = spec.time_col
        return cls(f"{t}: step", f"{spec.entity_col}: rows" if spec.entity_col else "rows", f"{t}: parses",
                   f"{t}: has UTC offset", f"{t}: UTC offset")


def build_suite(spec: DataSpec, rules: Rules | None = None, facts: Facts | None = None) -> gx.ExpectationSuite:
    """The contract for one dataset, built from what each column means and the config's knobs.

    Absent columns get only their existence check, so one missing column cannot crash the rest; text columns
    that must be numeric get no numeric checks beyond the dtype one.
    """
    import great_expectations as gx

    rules = rules or Rules.from_config(PipelineConfig())
    facts = facts or Facts()
    checks = [_expect("exists", "ExpectColumnToExist", column=c) for c in rules.columns(spec)]
    for col in dict.fromkeys(spec.features):
        checks += _feature_checks(col, rules, facts)
    checks += _time_checks(spec, rules, facts)
    if spec.entity_col and spec.entity_col not in facts.absent:
        checks.append(_expect("no_nulls", "ExpectColumnValuesToNotBeNull", column=spec.entity_col))
    if spec.time_col not in facts.absent and (not spec.entity_col or spec.entity_col not in facts.absent):
        checks += _rows_checks(spec, rules)
    if not rules.scoring:
        checks += _target_checks(spec.target_col, rules, facts)
    # given to the constructor: suite.add_expectation would look for a current data context and its store
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=checks)


def _expect(role: str, kind: str, severity: str = "critical", description: str | None = None, **kwargs: Any):
    import great_expectations as gx

    extra = {"description": description} if description else {}
    return getattr(gx.expectations, kind)(meta={"check": role}, severity=severity, **extra, **kwargs)


def _feature_checks(col: str, rules: Rules, facts: Facts) -> list[Any]:
    if col in facts.absent:
        return []
    checks = [_expect("numeric", "ExpectColumnValuesToBeInTypeList", column=col, type_list=list(NUMERIC_TYPES))]
    numeric = col not in facts.text
    if numeric:
        checks.append(_expect("finite", "ExpectColumnValuesToNotBeInSet", column=col,
                              value_set=[math.inf, -math.inf]))
    if rules.missing == "error":
        checks.append(_expect("no_nulls", "ExpectColumnValuesToNotBeNull", column=col))
    else:  # the declared policy fills or drops them later, up to a share
        checks.append(_expect("null_fraction", "ExpectColumnValuesToNotBeNull", column=col,
                              mostly=1.0 - rules.max_null_fraction))
    if numeric and not rules.scoring:
        checks.append(_expect("not_constant", "ExpectColumnUniqueValueCountToBeBetween", "warning", column=col,
                              min_value=2))
    return checks


def _time_checks(spec: DataSpec, rules: Rules, facts: Facts) -> list[Any]:
    if spec.time_col in facts.absent:
        return []
    h = Helpers.of(spec)
    checks = [_expect("no_nulls", "ExpectColumnValuesToNotBeNull", column=spec.time_col)]
    if spec.entity_col in facts.absent:  # no helper columns without the entities
        return checks
    if facts.time_parsed:
        checks.append(_expect("parses", "ExpectColumnValuesToBeInSet", column=h.parses, value_set=[1],
                              description=f"every value of '{spec.time_col}' parses as a datetime or an integer step"))
    if facts.zones:
        checks.append(_expect("one_zone_kind", "ExpectColumnValuesToBeInSet", column=h.zoned,
                              value_set=[int(facts.majority_zoned)],
                              description=f"every time in '{spec.time_col}' is written with a UTC offset, or none is"))
        checks.append(_expect("one_offset", "ExpectColumnUniqueValueCountToBeBetween", "warning", column=h.offset,
                              max_value=1, description=f"the times in '{spec.time_col}' share one UTC offset "
                              "(times with different offsets are converted to UTC)"))
    unit = "seconds" if facts.time_is_datetime else "steps"
    entity = f"'{spec.entity_col}'" if spec.entity_col else "the table"
    checks.append(_expect("increasing", "ExpectColumnValuesToBeBetween", column=h.step, min_value=0, strict_min=True,
                          description=f"'{spec.time_col}' strictly increases within each {entity}: the step from "
                          f"the previous row of the same entity ({unit}) is above 0"))
    limit = gap_in_step_unit(rules.max_gap, facts.time_is_datetime)
    if limit is not None:
        checks.append(_expect("gap", "ExpectColumnValuesToBeBetween", "warning", column=h.step, max_value=limit,
                              description=f"no time step above window.max_gap = {rules.max_gap} ({limit:g} {unit}); "
                              "windows spanning a larger gap are dropped"))
    return checks


def _rows_checks(spec: DataSpec, rules: Rules) -> list[Any]:
    rows, need = Helpers.of(spec).rows, rules.min_rows
    what = f"'{spec.entity_col}'" if spec.entity_col else "the table"
    return [
        _expect("enough_rows", "ExpectColumnMaxToBeBetween", column=rows, min_value=need,
                description=f"some {what} has the {need} rows one window with a known target needs"),
        _expect("short_entities", "ExpectColumnValuesToBeBetween", "warning", column=rows, min_value=need,
                description=f"every {what} has at least {need} rows (shorter ones give no window)"),
    ]


def _target_checks(target: str, rules: Rules, facts: Facts) -> list[Any]:
    if target in facts.absent:
        return []
    checks = [
        _expect("no_nulls", "ExpectColumnValuesToNotBeNull", column=target),
        _expect("in_set", "ExpectColumnValuesToBeInSet", column=target, value_set=list(TARGET_VALUES)),
    ]
    if target in facts.text:
        return checks
    return checks + [
        # a rare-event dataset without a single event (or without a single non-event) cannot be learned
        _expect("has_positive", "ExpectColumnMaxToBeBetween", column=target, min_value=1),
        _expect("has_negative", "ExpectColumnMinToBeBetween", column=target, max_value=0),
        _expect("prevalence", "ExpectColumnMeanToBeBetween", column=target, min_value=rules.min_prevalence,
                max_value=rules.max_prevalence),
        _expect("rare", "ExpectColumnMeanToBeBetween", "warning", column=target, max_value=RARE,
                description=f"the share of positive rows is at most {RARE:.0%} (a rare event)"),
    ]


def gap_in_step_unit(max_gap: float | str | None, is_datetime: bool) -> float | None:
    """window.max_gap in the step column's unit: seconds for datetimes, steps otherwise."""
    try:
        limit = gap_limit(max_gap, is_datetime)
    except (DataError, ValueError):
        return None  # a max_gap of the wrong kind is reported when windows are cut
    if limit is None:
        return None
    return limit / 1e9 if is_datetime else float(limit)
