"""The data contract: a Great Expectations suite built from the config and the resolved DataSpec.

The checks are GX's; this module turns their results into lines a user can act on, such as
"column 'x': 3 null value(s) at lines 6, 19, 202". Line numbers are those of the file as read, with the
header as line 1: row i of the table is line i + 2.

Rules that hold per entity or per row pair (time strictly increasing within each entity, rows per entity,
one kind of time zone) have no GX expectation of their own. They are computed here as helper columns
('timestamp: step', 'machine: rows'), and plain GX expectations validate those, so every result still
lands in GX's report and its Data Docs.

Each check has a severity: an "error" breaks the contract; a "warning" is reported and the contract holds.
Constant features are a warning, and they are dropped from the features. Near-constant features (one value in
at least ``NEAR_CONSTANT_SHARE`` of the rows and at most ``NEAR_CONSTANT_DISTINCT`` distinct values per row) are
a warning too; ``data.near_constant`` says whether they are dropped or kept.

GX runs on an ephemeral context, so nothing is written to disk unless Data Docs are asked for (into a given
folder). great_expectations is imported lazily: it takes seconds, and only validation needs it.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lstm_core.config import PipelineConfig
from lstm_core.data import DataError, DataSpec, Times, lines_text, read_times, zone_problem
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
MAX_LINES = 10  # line numbers (and offending values) quoted per failing check
RARE = 0.5  # above this prevalence the target is not a rare event (a warning)
SUITE_NAME = "lstm-pipeline-data-contract"
# near-constant: the most common value fills at least this share of the non-missing rows ...
NEAR_CONSTANT_SHARE = 0.95
# ... and there are at most this many distinct values per row (a continuous sensor with a long rest is not one)
NEAR_CONSTANT_DISTINCT = 0.10

# the order in which one column's checks are reported
_ORDER = (
    "exists", "numeric", "finite", "no_nulls", "null_fraction", "not_constant", "parses", "one_zone_kind",
    "one_offset", "increasing", "gap", "enough_rows", "short_entities", "in_set", "has_positive",
    "has_negative", "prevalence", "rare",
)  # fmt: skip


@dataclass(frozen=True)
class Check:
    """One expectation on one column, with what was observed in words."""

    expectation: str  # e.g. "expect_column_values_to_not_be_null"
    column: str | None  # the user's column (a helper column's checks are reported on the column it derives from)
    success: bool
    observed: str  # e.g. "3 null value(s) at lines 6, 19, 202"
    severity: str = "error"  # "error" breaks the contract; "warning" is reported and the contract holds
    name: str = ""  # the rule in words, e.g. "strictly increasing within each entity"

    @property
    def result(self) -> str:
        return "pass" if self.success else ("FAIL" if self.severity == "error" else "warn")


@dataclass(frozen=True)
class ContractReport:
    """Every check of one validation, plus GX's own result as a JSON-able dict."""

    checks: list[Check]
    raw: dict
    dropped: tuple[str, ...] = ()  # constant (and, by data.near_constant, near-constant) features, left out from here on
    docs: str | None = None  # index.html of the Data Docs site, when one was built

    @property
    def success(self) -> bool:
        return not self.failures()

    def failures(self) -> list[Check]:
        """Failed checks of severity error: each one breaks the contract."""
        return [c for c in self.checks if not c.success and c.severity == "error"]

    def warnings(self) -> list[Check]:
        """Failed checks of severity warning: reported, but the contract holds."""
        return [c for c in self.checks if not c.success and c.severity != "error"]

    def message(self) -> str:
        """One line per failure, naming the column and the lines to look at."""
        return "\n".join(_line(c) for c in self.failures())

    def summary(self) -> str:
        """One sentence: holds or not, with how many checks, warnings and dropped features."""
        head = "Data contract holds" if self.success else f"Data contract broken by {len(self.failures())} check(s)"
        tail = f"; (near-)constant feature(s) dropped: {', '.join(self.dropped)}" if self.dropped else ""
        return f"{head}: {len(self.checks)} checks, {len(self.warnings())} warning(s){tail}."

    def markdown(self) -> str:
        """The summary, a table with one row per check, then the failures and warnings in full."""
        rows = [self.summary(), "", "| check | column | expectation | severity | result | observed |",
                "|---|---|---|---|---|---|"]
        for c in self.checks:
            cells = (c.name, c.column or "", c.expectation, c.severity, c.result, c.observed)
            rows.append("| " + " | ".join(_cell(x) for x in cells) + " |")
        for title, found in (("Failures", self.failures()), ("Warnings", self.warnings())):
            if found:
                rows += ["", f"**{title}**", ""] + [f"- {_line(c)}" for c in found]
        return "\n".join(rows)

    def extended(self, checks: Iterable[Check]) -> ContractReport:
        """The same report with more checks (the fold dry-run, say) appended."""
        return replace(self, checks=[*self.checks, *checks])


class ContractError(DataError):
    """The data breaks its contract; str() names each failing column and its lines."""

    def __init__(self, report: ContractReport) -> None:
        super().__init__(report.message())
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes (Prefect, Dask)
        return (type(self), (self.report,))


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
    limit = _gap(rules.max_gap, facts.time_is_datetime)
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


def _gap(max_gap: float | str | None, is_datetime: bool) -> float | None:
    """window.max_gap in the step column's unit: seconds for datetimes, steps otherwise."""
    try:
        limit = gap_limit(max_gap, is_datetime)
    except (DataError, ValueError):
        return None  # a max_gap of the wrong kind is reported when windows are cut
    if limit is None:
        return None
    return limit / 1e9 if is_datetime else float(limit)


@dataclass
class _Context:
    """What the describers read: the validated frame with its helper columns, and how it was read."""

    frame: pd.DataFrame
    spec: DataSpec
    rules: Rules
    facts: Facts
    helpers: Helpers
    times: Times | None = None
    previous: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # (N,) previous row, same entity


def run_contract(df: pd.DataFrame, spec: DataSpec, config: PipelineConfig | None = None,
                 docs_dir: str | Path | None = None, scoring: bool = False) -> ContractReport:
    """Validate the table as read (before any sorting or filtering, so that line numbers match the file).

    With ``docs_dir``, GX's Data Docs for this validation are written there (index.html and one page).
    With ``scoring``, the table is one to score with a model trained under ``config``: the same feature,
    time and entity checks, and none on the target, which such a file does not have.
    """
    rules = Rules.from_config(config or PipelineConfig(), scoring)
    table = df.reset_index(drop=True)  # GX reports index labels; positions give line numbers
    columns = rules.columns(spec)
    present = [c for c in columns if c in table.columns]
    ctx = _context(table[present], spec, rules, frozenset(c for c in columns if c not in table.columns))
    suite = build_suite(spec, rules, ctx.facts)
    result, docs = _validate(ctx.frame, suite, docs_dir)
    raw = _json_safe(result.to_json_dict())
    checks = [_to_check(r, ctx) for r in raw["results"]]
    place = {c: i for i, c in enumerate(columns)}
    rank = {k: i for i, k in enumerate(_ORDER)}
    roles = [(r["expectation_config"].get("meta") or {}).get("check", "") for r in raw["results"]]
    order = sorted(range(len(checks)), key=lambda i: (place.get(checks[i].column, len(place)),
                                                      rank.get(roles[i], len(rank))))
    checks = [checks[i] for i in order]
    dropped = tuple(c.column for i, c in zip(order, checks, strict=True) if roles[i] == "not_constant" and not c.success)
    if not scoring:
        near = _near_constant_checks(table, spec, set(dropped), config or PipelineConfig())
        checks += near
        if (config or PipelineConfig()).data.near_constant == "drop":
            dropped += tuple(c.column for c in near if not c.success)
    if spec.features and set(dropped) >= set(spec.features):
        checks.append(Check("features_vary", None, False, "every feature is constant: nothing is left to learn from",
                            name="some feature varies"))
    return ContractReport(checks=checks, raw=raw, dropped=tuple(c for c in spec.features if c in dropped), docs=docs)


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


def _near_constant_checks(df: pd.DataFrame, spec: DataSpec, constant: set[str], config: PipelineConfig) -> list[Check]:
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


def _context(frame: pd.DataFrame, spec: DataSpec, rules: Rules, absent: frozenset[str]) -> _Context:
    """Read the time column, add the helper columns, and note what decides the suite's shape."""
    h = Helpers.of(spec)
    text = frozenset(c for c in frame.columns
                     if not pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
    ctx = _Context(frame, spec, rules, Facts(absent=absent, text=text), h)
    if spec.time_col in absent or (spec.entity_col and spec.entity_col in absent):
        return ctx
    values = frame[spec.time_col]
    times = read_times(values)
    parsed = not (pd.api.types.is_integer_dtype(values) or pd.api.types.is_datetime64_any_dtype(values))
    helpers: dict[str, Any] = {}
    codes = _entity_codes(frame, spec)
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
    return _Context(frame, spec, rules, facts, h, times, previous)


def _entity_codes(frame: pd.DataFrame, spec: DataSpec) -> np.ndarray:
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


def _validate(frame: pd.DataFrame, suite: gx.ExpectationSuite, docs_dir: str | Path | None) -> tuple[Any, str | None]:
    """Run the suite on an ephemeral context: in-memory stores, no progress bars or analytics.

    With ``docs_dir``, the context gets one Data Docs site there, and the result is rendered into it.
    """
    # older GX 1.x releases read this to decide on usage events (1.24 sends none); a user's own setting wins
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {} if docs_dir is None else {"contract": {
        "class_name": "SiteBuilder", "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }}
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
        data_docs_sites=sites,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("rows").add_dataframe_asset("table")
    try:
        whole = asset.add_batch_definition_whole_dataframe("whole")
        batch = whole.get_batch(batch_parameters={"dataframe": frame})
        # SUMMARY keeps the first MAX_LINES offending rows; COMPLETE would list every one of a million bad rows
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_LINES}
        result = batch.validate(suite, result_format=result_format)
        docs = _data_docs(context, result, Path(docs_dir)) if docs_dir is not None else None
    finally:
        # GX keeps its last context alive, and the data source caches the batch and a boolean Series per
        # expectation and column: a copy of the table and more, held until the process ends.
        context.data_sources.delete("rows")
    return result, docs


def _data_docs(context: Any, result: Any, folder: Path) -> str | None:
    """Store the result in the context's in-memory store and build the site's pages from it.

    Only the static files the pages link to are kept (GX copies megabytes of images the pages never show).
    Data Docs are a report: if GX cannot build them, the contract's verdict stands without them.
    """
    from datetime import datetime, timezone

    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=SUITE_NAME),
        run_id=RunIdentifier(run_name="lstm-pipeline", run_time=datetime.now(timezone.utc)),
        batch_identifier="table",
    )
    try:
        context.validation_results_store.set(key, result)
        built = context.build_data_docs(resource_identifiers=[key])
    except Exception:  # noqa: BLE001 - a report that cannot be drawn must not change the verdict
        return None
    pages = " ".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*.html"))
    for path in (folder / "static").rglob("*"):
        if path.is_file() and path.name not in pages:
            path.unlink()
    return next(iter(built.values()), None)


def _json_safe(value: Any) -> Any:
    """GX's result as strict JSON: ±inf and NaN (an offending value, say) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _to_check(res: dict, ctx: _Context) -> Check:
    config = res["expectation_config"]
    kind, role = config["type"], (config.get("meta") or {}).get("check", "")
    column = _user_column(config["kwargs"].get("column"), ctx)
    severity = "warning" if config.get("severity") == "warning" else "error"
    success = bool(res["success"])
    error = _exception_message(res.get("exception_info"))
    if error:
        dtype = f" on dtype {ctx.frame[column].dtype}" if column in ctx.frame.columns else ""
        observed = f"not evaluated{dtype}: {error}"
    else:
        describe = _DESCRIBE.get(role)
        result = res.get("result") or {}
        observed = describe(result, success, ctx, column) if describe else str(result.get("observed_value"))
    return Check(kind, column, success, observed, severity, _name(role, ctx))


def _user_column(column: str | None, ctx: _Context) -> str | None:
    """A helper column's checks are reported on the column it derives from."""
    h, spec = ctx.helpers, ctx.spec
    if column in (h.step, h.parses, h.zoned, h.offset):
        return spec.time_col
    if column == h.rows:
        return spec.entity_col or spec.time_col
    return column


def _name(role: str, ctx: _Context) -> str:
    r = ctx.rules
    names = {
        "exists": "present", "numeric": "numeric", "finite": "finite (no ±inf)", "no_nulls": "no missing values",
        "null_fraction": f"missing values at most {r.max_null_fraction:.0%} ({r.missing} after validation)",
        "not_constant": "not constant", "parses": "times parse", "one_zone_kind": "one kind of time zone",
        "one_offset": "one UTC offset", "increasing": "strictly increasing within each entity",
        "gap": f"no gap above window.max_gap ({r.max_gap})",
        "enough_rows": f"some entity has {r.min_rows} rows", "short_entities": f"every entity has {r.min_rows} rows",
        "in_set": "values in {0, 1}", "has_positive": "at least one positive", "has_negative": "at least one negative",
        "prevalence": f"prevalence in [{r.min_prevalence:g}, {r.max_prevalence:g}]",
        "rare": f"prevalence at most {RARE:.0%} (a rare event)",
    }
    return names.get(role, role)


def _exists(result: dict, success: bool, ctx: _Context, column: str) -> str:
    if success:
        return "present"
    names = [str(c) for c in ctx.frame.columns if c not in vars(ctx.helpers).values()]
    more = f" and {len(names) - MAX_LINES} more" if len(names) > MAX_LINES else ""
    return f"not found; the table has columns {names[:MAX_LINES]}{more}"


def _numeric(result: dict, success: bool, ctx: _Context, column: str) -> str:
    values = ctx.frame[column]
    if success:
        return f"dtype {values.dtype}"
    head = f"dtype {values.dtype}, expected a numeric dtype"
    try:
        parsed = pd.to_numeric(values, errors="coerce")
    except (TypeError, ValueError):
        return head
    bad = np.flatnonzero((values.notna() & parsed.isna()).to_numpy(dtype=bool))
    if not len(bad):
        return head
    shown = ", ".join(f"{values.iloc[i]!r} (line {i + 2})" for i in bad[:MAX_LINES])
    return f"{head}; {len(bad)} text value(s): {shown}{_more(min(len(bad), MAX_LINES), len(bad))}"


def _finite(result: dict, success: bool, ctx: _Context, column: str) -> str:
    if success:
        return "no ±inf"
    values = ctx.frame[column].to_numpy(np.float64, na_value=np.nan)
    bad = np.flatnonzero(np.isinf(values))
    kinds = ", ".join(sorted({str(v) for v in values[bad[:MAX_LINES]]}))
    return f"{len(bad)} infinite value(s) ({kinds}) at {lines_text(bad)}"


def _not_null(result: dict, success: bool, ctx: _Context, column: str) -> str:
    if success:
        return "no nulls"
    count = int(result.get("unexpected_count", 0))
    return f"{count} null value(s) at {_lines(result.get('partial_unexpected_index_list') or [], count)}"


def _null_fraction(result: dict, success: bool, ctx: _Context, column: str) -> str:
    count, share = int(result.get("unexpected_count", 0)), float(result.get("unexpected_percent") or 0) / 100
    if success:
        return f"{count} null value(s) ({share:.1%}), left to data.missing = {ctx.rules.missing}" if count else "no nulls"
    where = _lines(result.get("partial_unexpected_index_list") or [], count)
    return (f"{count} null value(s) ({share:.1%}), over data.max_null_fraction = {ctx.rules.max_null_fraction:g}, "
            f"at {where}")


def _constant(result: dict, success: bool, ctx: _Context, column: str) -> str:
    distinct = result.get("observed_value")
    if success:
        return f"{distinct} distinct values"
    values = ctx.frame[column].dropna()
    only = f" ({_plain(values.iloc[0])!r} on every row)" if len(values) else ""
    return f"constant{only}: dropped from the features"


def _parses(result: dict, success: bool, ctx: _Context, column: str) -> str:
    if success:
        return "datetimes" if ctx.facts.time_is_datetime else "integer steps"
    bad = np.flatnonzero(ctx.times.unparsable)
    values = ctx.frame[column]
    shown = ", ".join(f"{values.iloc[i]!r} (line {i + 2})" for i in bad[:MAX_LINES])
    return f"{len(bad)} value(s) neither datetimes nor integer steps: {shown}{_more(min(len(bad), MAX_LINES), len(bad))}"


def _zone_kind(result: dict, success: bool, ctx: _Context, column: str) -> str:
    if success:
        return "every time carries a UTC offset" if ctx.facts.majority_zoned else "no time carries a UTC offset"
    return zone_problem(ctx.times, ctx.frame[column])


def _offsets(result: dict, success: bool, ctx: _Context, column: str) -> str:
    offsets = ctx.frame[ctx.helpers.offset]
    if success:
        found = offsets.dropna()
        return f"all {found.iloc[0]}" if len(found) else "no offsets"
    firsts = offsets.dropna().drop_duplicates()
    shown = ", ".join(f"{v} (from line {i + 2})" for i, v in firsts.iloc[:MAX_LINES].items())
    return f"{len(firsts)} different UTC offsets: {shown}; the times are converted to UTC"


def _increasing(result: dict, success: bool, ctx: _Context, column: str) -> str:
    if success:
        unread = "" if ctx.times is None or ctx.times.valid.all() else " where the times could be read"
        return f"strictly increasing{unread}"
    step = ctx.frame[ctx.helpers.step].to_numpy()
    parts = []
    for kind, rows, rel in (("duplicate time(s)", np.flatnonzero(step == 0), "same time as"),
                            ("backward jump(s)", np.flatnonzero(step < 0), "earlier than")):
        if len(rows):
            shown = ", ".join(f"line {i + 2} ({rel} line {ctx.previous[i] + 2})" for i in rows[:MAX_LINES])
            parts.append(f"{len(rows)} {kind}: {shown}{_more(min(len(rows), MAX_LINES), len(rows))}")
    owner = "entity" if ctx.spec.entity_col else "table"
    return "; ".join(parts) + f" (compared with the previous row of the same {owner}, in file order)"


def _gaps(result: dict, success: bool, ctx: _Context, column: str) -> str:
    step = ctx.frame[ctx.helpers.step].to_numpy()
    largest = np.nanmax(step) if np.isfinite(step).any() else float("nan")
    size = _duration(largest, ctx.facts.time_is_datetime)
    if success:
        return f"largest step {size}"
    limit = _gap(ctx.rules.max_gap, ctx.facts.time_is_datetime) or 0
    rows = np.flatnonzero(step > limit)
    return (f"{len(rows)} gap(s) above {ctx.rules.max_gap}, the largest {size}, before {lines_text(rows)}; "
            "windows spanning them are dropped")


def _duration(value: float, is_datetime: bool) -> str:
    if not np.isfinite(value):
        return "n/a"
    return str(pd.Timedelta(seconds=float(value))) if is_datetime else f"{value:g} steps"


def _enough_rows(result: dict, success: bool, ctx: _Context, column: str) -> str:
    longest = _plain(result.get("observed_value"))
    owner = "the table has" if not ctx.spec.entity_col else "the longest entity has"
    if success:
        return f"{owner} {longest} rows"
    if ctx.rules.scoring:
        return f"no window fits: {owner} {longest} rows, and the model's window needs {ctx.rules.min_rows}"
    return (f"no window fits: {owner} {longest} rows, and one window with a known target needs "
            f"{ctx.rules.min_rows} (window + horizon); use a shorter --window or --horizon, or longer data")


def _short_entities(result: dict, success: bool, ctx: _Context, column: str) -> str:
    if success:
        return f"every entity has at least {ctx.rules.min_rows} rows"
    codes = _entity_codes(ctx.frame, ctx.spec)
    sizes = pd.Series(ctx.frame[ctx.helpers.rows].to_numpy()).groupby(codes).first()
    short = sizes[(sizes < ctx.rules.min_rows) & (sizes.index >= 0)]
    names = pd.unique(ctx.frame[ctx.spec.entity_col].dropna()) if ctx.spec.entity_col else ["the table"]
    shown = ", ".join(f"{names[c]!r} ({int(n)} rows)" for c, n in short.iloc[:MAX_LINES].items())
    return (f"{len(short)} entit{'y' if len(short) == 1 else 'ies'} shorter than {ctx.rules.min_rows} rows: "
            f"{shown}{_more(min(len(short), MAX_LINES), len(short))}; they give no window")


def _in_set(result: dict, success: bool, ctx: _Context, column: str) -> str:
    allowed = "{" + ", ".join(map(str, TARGET_VALUES)) + "}"
    if success:
        return f"values in {allowed}"
    count = int(result.get("unexpected_count", 0))
    where: dict[str, list[int]] = {}
    values = result.get("partial_unexpected_list") or []
    for value, index in zip(values, result.get("partial_unexpected_index_list") or [], strict=True):
        where.setdefault(repr(value), []).append(index)
    shown = ", ".join(f"{value} ({_lines(idx, len(idx))})" for value, idx in where.items())
    dtype = ctx.frame[column].dtype
    kind = "" if pd.api.types.is_numeric_dtype(dtype) else f"dtype {dtype}; "
    return f"{kind}{count} value(s) outside {allowed}: {shown}{_more(sum(map(len, where.values())), count)}"


def _max(result: dict, success: bool, ctx: _Context, column: str) -> str:
    observed = result.get("observed_value")
    if success:
        return f"max {observed}"
    return f"max is {observed}: no positive (1) row, and a target without a single event cannot be learned"


def _min(result: dict, success: bool, ctx: _Context, column: str) -> str:
    observed = result.get("observed_value")
    if success:
        return f"min {observed}"
    return f"min is {observed}: every row is positive, so there is nothing to tell an event from"


def _prevalence(result: dict, success: bool, ctx: _Context, column: str) -> str:
    share = result.get("observed_value")
    text = f"{share:.4%} of rows positive" if isinstance(share, (int, float)) else str(share)
    if success:
        return text
    r = ctx.rules
    return f"{text}, outside [{r.min_prevalence:g}, {r.max_prevalence:g}] (data.min_prevalence, data.max_prevalence)"


def _rare(result: dict, success: bool, ctx: _Context, column: str) -> str:
    share = result.get("observed_value")
    if success:
        return f"{share:.4%} of rows positive" if isinstance(share, (int, float)) else str(share)
    return f"{share:.1%} of rows positive, over {RARE:.0%}: not a rare event"


_DESCRIBE: dict[str, Callable[[dict, bool, _Context, str], str]] = {
    "exists": _exists, "numeric": _numeric, "finite": _finite, "no_nulls": _not_null,
    "null_fraction": _null_fraction, "not_constant": _constant, "parses": _parses, "one_zone_kind": _zone_kind,
    "one_offset": _offsets, "increasing": _increasing, "gap": _gaps, "enough_rows": _enough_rows,
    "short_entities": _short_entities, "in_set": _in_set, "has_positive": _max, "has_negative": _min,
    "prevalence": _prevalence, "rare": _rare,
}


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


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (4.0 rows as 4), for messages."""
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _line(c: Check) -> str:
    return f"column '{c.column}': {c.observed}" if c.column else c.observed


def _lines(index: list[int], total: int) -> str:
    """'line 5' or 'lines 5, 9, 12 (first 3 of 40)' from 0-based row positions."""
    return lines_text(index, total)


def _more(shown: int, total: int) -> str:
    return f" (first {shown} of {total})" if total > shown else ""


def _exception_message(info: Any) -> str | None:
    """GX reports an expectation's own error flat, and a failed metric's error keyed by the metric's id."""
    if not isinstance(info, dict):
        return None
    if "raised_exception" in info:
        found = info.get("exception_message") if info.get("raised_exception") else None
    else:
        found = next((v.get("exception_message") for v in info.values() if isinstance(v, dict)), None)
    lines = str(found or "").strip().splitlines()
    return lines[0][:200] if lines else None


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
