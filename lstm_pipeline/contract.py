"""The data contract: a Great Expectations suite built from the resolved DataSpec, run on the rows in memory.

The checks are GX's; this module turns their results into lines a user can act on, such as
"column 'x': 3 null value(s) at lines 6, 19, 202". Line numbers are those of the file as read, with the
header as line 1: row i of the table is line i + 2. GX runs on an ephemeral context, so nothing is written
to disk. great_expectations is imported lazily: it takes seconds, and only validation needs it.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from lstm_core.data import DataError, DataSpec

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

# the order in which one column's checks are reported
_ORDER = (
    "expect_column_to_exist",
    "expect_column_values_to_be_in_type_list",
    "expect_column_values_to_not_be_null",
    "expect_column_values_to_be_in_set",
    "expect_column_max_to_be_between",
)


@dataclass(frozen=True)
class Check:
    """One expectation on one column, with what was observed in words."""

    expectation: str  # e.g. "expect_column_values_to_not_be_null"
    column: str | None
    success: bool
    observed: str  # e.g. "3 null value(s) at lines 6, 19, 202"


@dataclass(frozen=True)
class ContractReport:
    """Every check of one validation, plus GX's own result as a JSON-able dict."""

    checks: list[Check]
    raw: dict

    @property
    def success(self) -> bool:
        return all(c.success for c in self.checks)

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.success]

    def message(self) -> str:
        """One line per failure, naming the column and the lines to look at."""
        return "\n".join(f"column '{c.column}': {c.observed}" for c in self.failures())

    def markdown(self) -> str:
        """A table with one row per check."""
        rows = ["| expectation | column | result | observed |", "|---|---|---|---|"]
        for c in self.checks:
            cells = (c.expectation, c.column or "", "pass" if c.success else "FAIL", c.observed)
            rows.append("| " + " | ".join(_cell(x) for x in cells) + " |")
        return "\n".join(rows)


class ContractError(DataError):
    """The data breaks its contract; str() names each failing column and its lines."""

    def __init__(self, report: ContractReport) -> None:
        super().__init__(report.message())
        self.report = report

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes (Prefect, Dask)
        return (type(self), (self.report,))


def build_suite(spec: DataSpec, absent: Iterable[str] = ()) -> gx.ExpectationSuite:
    """The contract for one dataset, built from what each column means.

    Columns named in `absent` get only their existence check, so one missing column cannot crash the rest.
    """
    import great_expectations as gx

    expect = gx.expectations
    skip = set(absent)
    columns = list(dict.fromkeys(spec.required))
    checks: list[Any] = [expect.ExpectColumnToExist(column=col) for col in columns]
    checks += [
        expect.ExpectColumnValuesToBeInTypeList(column=col, type_list=list(NUMERIC_TYPES))
        for col in dict.fromkeys(spec.features)
        if col not in skip
    ]
    checks += [expect.ExpectColumnValuesToNotBeNull(column=col) for col in columns if col not in skip]
    if spec.target_col not in skip:
        target = spec.target_col
        checks.append(expect.ExpectColumnValuesToBeInSet(column=target, value_set=list(TARGET_VALUES)))
        # a rare-event dataset without a single event cannot be learned
        checks.append(expect.ExpectColumnMaxToBeBetween(column=target, min_value=1))
    # given to the constructor: suite.add_expectation would look for a current data context and its store
    return gx.ExpectationSuite(name="lstm-pipeline-data-contract", expectations=checks)


def run_contract(df: pd.DataFrame, spec: DataSpec) -> ContractReport:
    """Validate the table as read (before any sorting or filtering, so that line numbers match the file)."""
    frame = df.reset_index(drop=True)  # GX reports index labels; positions give line numbers
    columns = list(dict.fromkeys(spec.required))
    present = [c for c in columns if c in frame.columns]
    suite = build_suite(spec, absent=[c for c in columns if c not in frame.columns])
    # only the contract's columns go to GX, so it does not profile every unrelated column
    result = _validate(frame[present] if len(present) < frame.shape[1] else frame, suite)
    raw = result.to_json_dict()
    checks = [_to_check(r, frame) for r in raw["results"]]
    place = {c: i for i, c in enumerate(columns)}
    rank = {k: i for i, k in enumerate(_ORDER)}
    checks.sort(key=lambda c: (place.get(c.column, len(place)), rank.get(c.expectation, len(rank))))
    return ContractReport(checks=checks, raw=raw)


def _validate(frame: pd.DataFrame, suite: gx.ExpectationSuite) -> Any:
    """Run the suite on an ephemeral context: in-memory stores, no docs site, progress bars or analytics."""
    # older GX 1.x releases read this to decide on usage events (1.24 sends none); a user's own setting wins
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    asset = context.data_sources.add_pandas("rows").add_dataframe_asset("table")
    whole = asset.add_batch_definition_whole_dataframe("whole")
    batch = whole.get_batch(batch_parameters={"dataframe": frame})
    # SUMMARY keeps the first MAX_LINES offending rows; COMPLETE would list every one of a million bad rows
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_LINES}
    return batch.validate(suite, result_format=result_format)


def _to_check(res: dict, frame: pd.DataFrame) -> Check:
    kind = res["expectation_config"]["type"]
    column = res["expectation_config"]["kwargs"].get("column")
    success = bool(res["success"])
    error = _exception_message(res.get("exception_info"))
    if error:
        dtype = f" on dtype {frame[column].dtype}" if column in frame.columns else ""
        observed = f"not evaluated{dtype}: {error}"
    else:
        describe = _DESCRIBE.get(kind)
        result = res.get("result") or {}
        observed = describe(result, success, frame, column) if describe else str(result.get("observed_value"))
    return Check(expectation=kind, column=column, success=success, observed=observed)


def _exists(result: dict, success: bool, frame: pd.DataFrame, column: str) -> str:
    if success:
        return "present"
    names = [str(c) for c in frame.columns]
    more = f" and {len(names) - MAX_LINES} more" if len(names) > MAX_LINES else ""
    return f"not found; the table has columns {names[:MAX_LINES]}{more}"


def _numeric(result: dict, success: bool, frame: pd.DataFrame, column: str) -> str:
    values = frame[column]
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


def _not_null(result: dict, success: bool, frame: pd.DataFrame, column: str) -> str:
    if success:
        return "no nulls"
    count = int(result.get("unexpected_count", 0))
    return f"{count} null value(s) at {_lines(result.get('partial_unexpected_index_list') or [], count)}"


def _in_set(result: dict, success: bool, frame: pd.DataFrame, column: str) -> str:
    allowed = "{" + ", ".join(map(str, TARGET_VALUES)) + "}"
    if success:
        return f"values in {allowed}"
    count = int(result.get("unexpected_count", 0))
    where: dict[str, list[int]] = {}
    values = result.get("partial_unexpected_list") or []
    for value, index in zip(values, result.get("partial_unexpected_index_list") or [], strict=True):
        where.setdefault(repr(value), []).append(index)
    shown = ", ".join(f"{value} ({_lines(idx, len(idx))})" for value, idx in where.items())
    dtype = frame[column].dtype
    kind = "" if pd.api.types.is_numeric_dtype(dtype) else f"dtype {dtype}; "
    return f"{kind}{count} value(s) outside {allowed}: {shown}{_more(sum(map(len, where.values())), count)}"


def _max(result: dict, success: bool, frame: pd.DataFrame, column: str) -> str:
    observed = result.get("observed_value")
    if success:
        return f"max {observed}"
    return f"max is {observed}: no positive (1) row, and a target without a single event cannot be learned"


_DESCRIBE = {
    "expect_column_to_exist": _exists,
    "expect_column_values_to_be_in_type_list": _numeric,
    "expect_column_values_to_not_be_null": _not_null,
    "expect_column_values_to_be_in_set": _in_set,
    "expect_column_max_to_be_between": _max,
}


def _lines(index: list[int], total: int) -> str:
    """'line 5' or 'lines 5, 9, 12 (first 3 of 40)' from 0-based row positions."""
    numbers = [int(i) + 2 for i in index[:MAX_LINES]]
    if not numbers:
        return "unknown lines"
    word = "line" if len(numbers) == 1 else "lines"
    return f"{word} {', '.join(map(str, numbers))}{_more(len(numbers), total)}"


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
