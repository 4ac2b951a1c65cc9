"""GX's result for one expectation, in words: a Check such as "column 'x': 3 null value(s) at lines 6, 19, 202".

The expectation's rule (its ``meta["check"]``) picks the describer, from the ``_DESCRIBE`` table. Line
numbers are those of the file as read, with the header as line 1: row i of the table is line i + 2.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from lstm_core.data import lines_text, zone_problem
from lstm_pipeline.contract.context import Context, entity_codes
from lstm_pipeline.contract.report import MAX_LINES, Check
from lstm_pipeline.contract.suite import RARE, TARGET_VALUES, gap_in_step_unit


def to_check(res: dict, ctx: Context) -> Check:
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


def _user_column(column: str | None, ctx: Context) -> str | None:
    """A helper column's checks are reported on the column it derives from."""
    h, spec = ctx.helpers, ctx.spec
    if column in (h.step, h.parses, h.zoned, h.offset):
        return spec.time_col
    if column == h.rows:
        return spec.entity_col or spec.time_col
    return column


def _name(role: str, ctx: Context) -> str:
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


def _exists(result: dict, success: bool, ctx: Context, column: str) -> str:
    if success:
        return "present"
    names = [str(c) for c in ctx.frame.columns if c not in vars(ctx.helpers).values()]
    more = f" and {len(names) - MAX_LINES} more" if len(names) > MAX_LINES else ""
    return f"not found; the table has columns {names[:MAX_LINES]}{more}"


def _numeric(result: dict, success: bool, ctx: Context, column: str) -> str:
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


def _finite(result: dict, success: bool, ctx: Context, column: str) -> str:
    if success:
        return "no ±inf"
    values = ctx.frame[column].to_numpy(np.float64, na_value=np.nan)
    bad = np.flatnonzero(np.isinf(values))
    kinds = ", ".join(sorted({str(v) for v in values[bad[:MAX_LINES]]}))
    return f"{len(bad)} infinite value(s) ({kinds}) at {lines_text(bad)}"


def _not_null(result: dict, success: bool, ctx: Context, column: str) -> str:
    if success:
        return "no nulls"
    count = int(result.get("unexpected_count", 0))
    return f"{count} null value(s) at {_lines(result.get('partial_unexpected_index_list') or [], count)}"


def _null_fraction(result: dict, success: bool, ctx: Context, column: str) -> str:
    count, share = int(result.get("unexpected_count", 0)), float(result.get("unexpected_percent") or 0) / 100
    if success:
        return f"{count} null value(s) ({share:.1%}), left to data.missing = {ctx.rules.missing}" if count else "no nulls"
    where = _lines(result.get("partial_unexpected_index_list") or [], count)
    return (f"{count} null value(s) ({share:.1%}), over data.max_null_fraction = {ctx.rules.max_null_fraction:g}, "
            f"at {where}")


def _constant(result: dict, success: bool, ctx: Context, column: str) -> str:
    distinct = result.get("observed_value")
    if success:
        return f"{distinct} distinct values"
    values = ctx.frame[column].dropna()
    only = f" ({_plain(values.iloc[0])!r} on every row)" if len(values) else ""
    return f"constant{only}: dropped from the features"


def _parses(result: dict, success: bool, ctx: Context, column: str) -> str:
    if success:
        return "datetimes" if ctx.facts.time_is_datetime else "integer steps"
    bad = np.flatnonzero(ctx.times.unparsable)
    values = ctx.frame[column]
    shown = ", ".join(f"{values.iloc[i]!r} (line {i + 2})" for i in bad[:MAX_LINES])
    return f"{len(bad)} value(s) neither datetimes nor integer steps: {shown}{_more(min(len(bad), MAX_LINES), len(bad))}"


def _zone_kind(result: dict, success: bool, ctx: Context, column: str) -> str:
    if success:
        return "every time carries a UTC offset" if ctx.facts.majority_zoned else "no time carries a UTC offset"
    return zone_problem(ctx.times, ctx.frame[column])


def _offsets(result: dict, success: bool, ctx: Context, column: str) -> str:
    offsets = ctx.frame[ctx.helpers.offset]
    if success:
        found = offsets.dropna()
        return f"all {found.iloc[0]}" if len(found) else "no offsets"
    firsts = offsets.dropna().drop_duplicates()
    shown = ", ".join(f"{v} (from line {i + 2})" for i, v in firsts.iloc[:MAX_LINES].items())
    return f"{len(firsts)} different UTC offsets: {shown}; the times are converted to UTC"


def _increasing(result: dict, success: bool, ctx: Context, column: str) -> str:
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


def _gaps(result: dict, success: bool, ctx: Context, column: str) -> str:
    step = ctx.frame[ctx.helpers.step].to_numpy()
    largest = np.nanmax(step) if np.isfinite(step).any() else float("nan")
    size = _duration(largest, ctx.facts.time_is_datetime)
    if success:
        return f"largest step {size}"
    limit = gap_in_step_unit(ctx.rules.max_gap, ctx.facts.time_is_datetime) or 0
    rows = np.flatnonzero(step > limit)
    return (f"{len(rows)} gap(s) above {ctx.rules.max_gap}, the largest {size}, before {lines_text(rows)}; "
            "windows spanning them are dropped")


def _duration(value: float, is_datetime: bool) -> str:
    if not np.isfinite(value):
        return "n/a"
    return str(pd.Timedelta(seconds=float(value))) if is_datetime else f"{value:g} steps"


def _enough_rows(result: dict, success: bool, ctx: Context, column: str) -> str:
    longest = _plain(result.get("observed_value"))
    owner = "the table has" if not ctx.spec.entity_col else "the longest entity has"
    if success:
        return f"{owner} {longest} rows"
    if ctx.rules.scoring:
        return f"no window fits: {owner} {longest} rows, and the model's window needs {ctx.rules.min_rows}"
    return (f"no window fits: {owner} {longest} rows, and one window with a known target needs "
            f"{ctx.rules.min_rows} (window + horizon); use a shorter --window or --horizon, or longer data")


def _short_entities(result: dict, success: bool, ctx: Context, column: str) -> str:
    if success:
        return f"every entity has at least {ctx.rules.min_rows} rows"
    codes = entity_codes(ctx.frame, ctx.spec)
    sizes = pd.Series(ctx.frame[ctx.helpers.rows].to_numpy()).groupby(codes).first()
    short = sizes[(sizes < ctx.rules.min_rows) & (sizes.index >= 0)]
    names = pd.unique(ctx.frame[ctx.spec.entity_col].dropna()) if ctx.spec.entity_col else ["the table"]
    shown = ", ".join(f"{names[c]!r} ({int(n)} rows)" for c, n in short.iloc[:MAX_LINES].items())
    return (f"{len(short)} entit{'y' if len(short) == 1 else 'ies'} shorter than {ctx.rules.min_rows} rows: "
            f"{shown}{_more(min(len(short), MAX_LINES), len(short))}; they give no window")


def _in_set(result: dict, success: bool, ctx: Context, column: str) -> str:
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


def _max(result: dict, success: bool, ctx: Context, column: str) -> str:
    observed = result.get("observed_value")
    if success:
        return f"max {observed}"
    return f"max is {observed}: no positive (1) row, and a target without a single event cannot be learned"


def _min(result: dict, success: bool, ctx: Context, column: str) -> str:
    observed = result.get("observed_value")
    if success:
        return f"min {observed}"
    return f"min is {observed}: every row is positive, so there is nothing to tell an event from"


def _prevalence(result: dict, success: bool, ctx: Context, column: str) -> str:
    share = result.get("observed_value")
    text = f"{share:.4%} of rows positive" if isinstance(share, (int, float)) else str(share)
    if success:
        return text
    r = ctx.rules
    return f"{text}, outside [{r.min_prevalence:g}, {r.max_prevalence:g}] (data.min_prevalence, data.max_prevalence)"


def _rare(result: dict, success: bool, ctx: Context, column: str) -> str:
    share = result.get("observed_value")
    if success:
        return f"{share:.4%} of rows positive" if isinstance(share, (int, float)) else str(share)
    return f"{share:.1%} of rows positive, over {RARE:.0%}: not a rare event"


_DESCRIBE: dict[str, Callable[[dict, bool, Context, str], str]] = {
    "exists": _exists, "numeric": _numeric, "finite": _finite, "no_nulls": _not_null,
    "null_fraction": _null_fraction, "not_constant": _constant, "parses": _parses, "one_zone_kind": _zone_kind,
    "one_offset": _offsets, "increasing": _increasing, "gap": _gaps, "enough_rows": _enough_rows,
    "short_entities": _short_entities, "in_set": _in_set, "has_positive": _max, "has_negative": _min,
    "prevalence": _prevalence, "rare": _rare,
}


def _plain(value: Any) -> Any:
    """numpy scalars as Python numbers (4.0 rows as 4), for messages."""
    value = value.item() if isinstance(value, np.generic) else value
    return int(value) if isinstance(value, float) and value.is_integer() else value


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
