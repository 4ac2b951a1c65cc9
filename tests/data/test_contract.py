"""The data contract on tiny hand-built tables: each broken rule is reported with its column and its lines."""
from __future__ import annotations

import io
import json
import pickle

import numpy as np
import pandas as pd
import pytest

from lstm_core.config import load_config
from lstm_core.data import DataSpec
from lstm_pipeline.contract import ContractError, Facts, Rules, build_suite, fold_checks, run_contract

SPEC = DataSpec(
    time_col="time", entity_col="unit", features=("a", "b"), target_col="label", mode="label", lookahead=0
)


def config(**extra):
    """Window 2, so that each 4-row entity of ``clean()`` holds windows."""
    return load_config(None, {"data.time_col": "time", "data.entity_col": "unit", "data.label_col": "label",
                              "window.length": 2, **extra})


CFG = config()


def clean() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": np.arange(8),
            "unit": ["u1"] * 4 + ["u2"] * 4,
            "a": np.linspace(0.0, 1.0, 8),
            "b": np.arange(8, dtype=np.int64),
            "label": [0, 0, 1, 0, 0, 0, 1, 0],
        }
    )


def failing(report) -> dict[tuple[str, str], str]:
    return {(c.expectation, c.column): c.observed for c in report.failures()}


def warned(report) -> dict[tuple[str, str], str]:
    return {(c.name, c.column): c.observed for c in report.warnings()}


def test_clean_frame_passes_every_check():
    report = run_contract(clean(), SPEC, CFG)
    listed = {(c.expectation, c.column) for c in report.checks}
    expected = {("expect_column_to_exist", col) for col in ("time", "unit", "a", "b", "label")}
    expected |= {("expect_column_values_to_not_be_null", col) for col in ("time", "unit", "a", "b", "label")}
    expected |= {("expect_column_values_to_be_in_type_list", c) for c in ("a", "b")}  # numeric
    expected |= {("expect_column_values_to_not_be_in_set", c) for c in ("a", "b")}  # finite
    expected |= {("expect_column_unique_value_count_to_be_between", c) for c in ("a", "b")}  # not constant
    expected |= {("near_constant (pandas: most common value's share, distinct values)", c) for c in ("a", "b")}
    expected |= {("expect_column_values_to_be_between", "time"),  # strictly increasing per entity
                 ("expect_column_max_to_be_between", "unit"), ("expect_column_values_to_be_between", "unit")}
    expected |= {("expect_column_values_to_be_in_set", "label"), ("expect_column_max_to_be_between", "label"),
                 ("expect_column_min_to_be_between", "label"), ("expect_column_mean_to_be_between", "label")}
    assert listed == expected
    assert len(report.checks) == 26  # the mean is checked twice: configured bounds (error), 50% (warning)
    assert report.success and report.failures() == [] and report.warnings() == [] and report.message() == ""
    assert report.raw["success"] is True and report.dropped == ()


def test_suite_is_built_from_the_spec_and_the_config():
    spec = DataSpec("t", None, ("x", "y", "z"), "event", "event", 3)
    rules = Rules.from_config(load_config(None, {"data.event_col": "event", "data.horizon": 3, "window.length": 5,
                                                 "window.max_gap": 2, "data.missing": "ffill"}))
    assert rules.min_rows == 5 + 3  # a window plus the horizon that decides its target
    suite = build_suite(spec, rules, Facts())
    configs = [(e.expectation_type, e.column, e.severity.value, (e.meta or {}).get("check")) for e in suite.expectations]
    assert [c for t, c, *_ in configs if t == "expect_column_values_to_be_in_type_list"] == ["x", "y", "z"]
    assert [c for _, c, _, role in configs if role == "null_fraction"] == ["x", "y", "z"]
    nulls = [e for e in suite.expectations if (e.meta or {}).get("check") == "null_fraction"]
    assert {e.mostly for e in nulls} == {0.95}  # 1 - data.max_null_fraction
    roles = {role: severity for _, _, severity, role in configs}
    assert roles["gap"] == roles["short_entities"] == roles["not_constant"] == roles["rare"] == "warning"
    assert roles["increasing"] == roles["enough_rows"] == roles["finite"] == roles["in_set"] == "critical"
    assert len(configs) == 5 + 3 * 4 + 3 + 2 + 6  # exist; per feature 4; time: null, increasing, gap; rows 2; target


def test_null_feature_names_column_and_line():
    df = clean()
    df.loc[3, "a"] = np.nan
    report = run_contract(df, SPEC, CFG)
    assert not report.success
    assert list(failing(report)) == [("expect_column_values_to_not_be_null", "a")]
    assert report.message() == "column 'a': 1 null value(s) at line 5"


def test_lines_count_positions_not_index_labels():
    df = clean()
    df.loc[3, "a"] = np.nan
    df.index = [70, 60, 50, 40, 30, 20, 10, 0]  # a sorted or filtered frame keeps odd labels
    assert run_contract(df, SPEC, CFG).message() == "column 'a': 1 null value(s) at line 5"


def test_with_a_missing_value_policy_only_the_share_is_checked():
    df = clean()
    df.loc[3, "a"] = np.nan
    assert run_contract(df, SPEC, config(**{"data.missing": "ffill", "data.max_null_fraction": 0.2})).success
    report = run_contract(df, SPEC, config(**{"data.missing": "drop", "data.max_null_fraction": 0.1}))
    assert report.message() == ("column 'a': 1 null value(s) (12.5%), over data.max_null_fraction = 0.1, at line 5")
    df.loc[1, "label"] = np.nan  # a missing target is never filled
    report = run_contract(df, SPEC, config(**{"data.missing": "ffill", "data.max_null_fraction": 0.2}))
    assert report.message() == "column 'label': 1 null value(s) at line 3"


def test_infinity_names_column_and_lines():
    df = clean()
    df.loc[2, "a"], df.loc[6, "a"] = np.inf, -np.inf
    report = run_contract(df, SPEC, CFG)
    assert list(failing(report)) == [("expect_column_values_to_not_be_in_set", "a")]
    assert report.message() == "column 'a': 2 infinite value(s) (-inf, inf) at lines 4, 8"
    json.dumps(report.raw, allow_nan=False)  # the logged result stays strict JSON


def test_label_outside_0_1_names_the_value():
    df = clean()
    df.loc[2, "label"] = 2
    report = run_contract(df, SPEC, CFG)
    assert list(failing(report)) == [("expect_column_values_to_be_in_set", "label")]
    assert report.message() == "column 'label': 1 value(s) outside {0, 1}: 2 (line 4)"


def test_missing_label_is_reported_and_the_rest_still_runs():
    report = run_contract(clean().drop(columns=["label"]), SPEC, CFG)
    assert list(failing(report)) == [("expect_column_to_exist", "label")]
    assert "column 'label': not found" in report.message()
    assert [c.expectation for c in report.checks if c.column == "label"] == ["expect_column_to_exist"]
    assert sum(c.success for c in report.checks) == 19  # every check of the other four columns passed


def test_text_value_in_numeric_column_object_dtype():
    df = clean()
    df["b"] = df["b"].astype(object)
    df.loc[5, "b"] = "abc"
    report = run_contract(df, SPEC, CFG)
    assert list(failing(report)) == [("expect_column_values_to_be_in_type_list", "b")]
    assert report.message() == (
        "column 'b': dtype object, expected a numeric dtype; 1 text value(s): 'abc' (line 7)"
    )


def test_text_value_in_numeric_column_read_from_csv():
    df = clean().astype({"b": str})
    df.loc[5, "b"] = "abc"
    read = pd.read_csv(io.StringIO(df.to_csv(index=False)))  # pandas reads the whole column as text
    report = run_contract(read, SPEC, CFG)
    assert list(failing(report)) == [("expect_column_values_to_be_in_type_list", "b")]
    assert "column 'b'" in report.message() and "'abc' (line 7)" in report.message()


def test_label_all_zeros_fails():
    report = run_contract(clean().assign(label=0), SPEC, CFG)
    assert list(failing(report)) == [("expect_column_max_to_be_between", "label")]
    assert report.message().startswith("column 'label': max is 0")


def test_label_all_ones_fails_and_is_no_rare_event():
    report = run_contract(clean().assign(label=1), SPEC, CFG)
    assert list(failing(report)) == [("expect_column_min_to_be_between", "label")]
    assert report.message().startswith("column 'label': min is 1: every row is positive")
    assert warned(report) == {("prevalence at most 50% (a rare event)", "label"):
                              "100.0% of rows positive, over 50%: not a rare event"}


def test_prevalence_bounds_and_the_rare_event_warning():
    frequent = clean().assign(label=[1, 1, 1, 0, 1, 1, 0, 0])  # 5 of 8
    report = run_contract(frequent, SPEC, CFG)
    assert report.success and list(warned(report)) == [("prevalence at most 50% (a rare event)", "label")]
    report = run_contract(clean(), SPEC, config(**{"data.min_prevalence": 0.3}))  # 2 of 8
    assert report.message() == ("column 'label': 25.0000% of rows positive, outside [0.3, 1] "
                                "(data.min_prevalence, data.max_prevalence)")


def test_duplicate_and_backward_times_are_named_with_their_lines():
    df = clean()
    df.loc[2, "time"] = 1  # u1: 0, 1, 1, 3 → line 4 repeats line 3
    df.loc[6, "time"] = 4  # u2: 4, 5, 4, 7 → line 8 goes back behind line 7
    report = run_contract(df, SPEC, CFG)
    assert list(failing(report)) == [("expect_column_values_to_be_between", "time")]
    assert report.message() == (
        "column 'time': 1 duplicate time(s): line 4 (same time as line 3); 1 backward jump(s): line 8 (earlier "
        "than line 7) (compared with the previous row of the same entity, in file order)"
    )


def test_entities_may_interleave_and_share_timestamps():
    df = pd.DataFrame({"time": np.repeat(np.arange(4), 2), "unit": ["u1", "u2"] * 4, "a": np.linspace(0, 1, 8),
                       "b": np.arange(8), "label": [0, 0, 1, 0, 0, 0, 0, 1]})
    assert run_contract(df, SPEC, CFG).success


def test_gaps_above_max_gap_are_a_warning():
    df = clean()
    df.loc[4:, "time"] = [10, 11, 15, 16]  # u2 jumps 4 steps before line 8
    report = run_contract(df, SPEC, config(**{"window.max_gap": 2}))
    assert report.success
    assert warned(report) == {("no gap above window.max_gap (2.0)", "time"):
                              "1 gap(s) above 2.0, the largest 4 steps, before line 8; windows spanning them are dropped"}


def test_short_entities_warn_and_no_long_entity_fails():
    df = pd.concat([clean(), clean().iloc[:2].assign(unit="u3", time=[8, 9])], ignore_index=True)
    report = run_contract(df, SPEC, config(**{"window.length": 3}))
    assert report.success
    assert warned(report) == {("every entity has 3 rows", "unit"): "1 entity shorter than 3 rows: 'u3' (2 rows); "
                                                                   "they give no window"}
    report = run_contract(df, SPEC, config(**{"window.length": 5}))
    assert report.message() == ("column 'unit': no window fits: the longest entity has 4 rows, and one window with "
                                "a known target needs 5 (window + horizon); use a shorter --window or --horizon, "
                                "or longer data")


def test_constant_features_are_dropped_and_all_constant_fails():
    df = clean().assign(b=7)
    report = run_contract(df, SPEC, CFG)
    assert report.success and report.dropped == ("b",)
    assert warned(report) == {("not constant", "b"): "constant (7 on every row): dropped from the features"}
    assert "constant feature(s) dropped: b" in report.summary()
    report = run_contract(df.assign(a=0.5), SPEC, CFG)
    assert not report.success and report.dropped == ("a", "b")
    assert report.message() == "every feature is constant: nothing is left to learn from"


def test_mixed_time_zones_are_named_with_their_lines():
    df = clean().assign(time=[f"2024-01-01T0{h}:00:00{'+00:00' if h < 6 else ''}" for h in range(8)])
    report = run_contract(df, SPEC, CFG)
    assert [c.name for c in report.failures()] == ["one kind of time zone"]
    assert report.message() == (
        "column 'time': mixed time zones: 6 time(s) carry a UTC offset (lines 2, 3, 4, 5, 6, 7, e.g. "
        "'2024-01-01T00:00:00+00:00') and 2 carry none (lines 8, 9, e.g. '2024-01-01T06:00:00'); write every "
        "time with its offset, or every time in one zone without one"
    )


def test_different_utc_offsets_are_converted_with_a_warning():
    stamps = [f"2024-03-31T0{h}:00:00{'+01:00' if h < 4 else '+02:00'}" for h in range(8)]
    df = clean().assign(time=stamps, unit="u1")
    df.loc[4:, "time"] = [f"2024-03-31T0{h}:00:00+02:00" for h in range(5, 9)]  # 03:00+02 → 04:00+02 …
    report = run_contract(df, SPEC, CFG)
    assert report.success
    assert warned(report) == {("one UTC offset", "time"): "2 different UTC offsets: +01:00 (from line 2), "
                                                         "+02:00 (from line 6); the times are converted to UTC"}


def test_unparsable_times_are_named():
    df = clean().astype({"time": str})
    df.loc[3, "time"] = "yesterday"
    df["time"] = [f"2024-01-01 0{i}:00" if t != "yesterday" else t for i, t in enumerate(df["time"])]
    report = run_contract(df, SPEC, CFG)
    assert report.message() == "column 'time': 1 value(s) neither datetimes nor integer steps: 'yesterday' (line 5)"


def test_markdown_lists_severity_result_and_the_warnings():
    df = clean().assign(b=7)
    df.loc[3, "a"] = np.nan
    report = run_contract(df, SPEC, CFG)
    lines = report.markdown().splitlines()
    assert lines[0] == ("Data contract broken by 1 check(s): 25 checks, 1 warning(s); (near-)constant feature(s) "
                        "dropped: b.")
    assert lines[2] == "| check | column | expectation | severity | result | observed |"
    table = [line for line in lines if line.startswith("| ")][1:]
    assert len(table) == len(report.checks)
    assert [line for line in table if "| FAIL |" in line] == [
        "| no missing values | a | expect_column_values_to_not_be_null | error | FAIL | 1 null value(s) at line 5 |"]
    assert [line for line in table if "| warn |" in line] == [
        "| not constant | b | expect_column_unique_value_count_to_be_between | warning | warn | constant (7 on every "
        "row): dropped from the features |"]
    assert lines[-7:] == ["**Failures**", "", "- column 'a': 1 null value(s) at line 5", "", "**Warnings**", "",
                          "- column 'b': constant (7 on every row): dropped from the features"]


def test_contract_error_carries_the_report():
    df = clean()
    df.loc[3, "a"] = np.nan
    report = run_contract(df, SPEC, CFG)
    error = ContractError(report)
    assert isinstance(error, ValueError)
    assert str(error) == report.message() and error.report is report
    again = pickle.loads(pickle.dumps(error))  # Prefect and Dask ship exceptions between processes
    assert str(again) == str(error) and again.report.failures() == report.failures()


def test_nothing_is_written_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_contract(clean(), SPEC, CFG)
    bad = clean().drop(columns=["unit"])
    bad.loc[0, "a"] = np.nan
    with pytest.raises(ContractError):
        report = run_contract(bad, SPEC, CFG)
        raise ContractError(report)
    assert list(tmp_path.iterdir()) == []


def test_data_docs_are_written_where_asked(tmp_path):
    df = clean()
    df.loc[2, "time"] = 1
    report = run_contract(df, SPEC, CFG, docs_dir=tmp_path / "docs")
    assert report.docs == (tmp_path / "docs" / "index.html").as_uri()
    pages = list((tmp_path / "docs" / "validations").rglob("*.html"))
    assert len(pages) == 1
    text = pages[0].read_text(encoding="utf-8")
    assert "strictly increases within each" in text  # the helper column's check, described in words
    assert sum(f.stat().st_size for f in (tmp_path / "docs").rglob("*") if f.is_file()) < 200_000


def _event_frame(events_at: list[int]) -> pd.DataFrame:
    rows = 40
    event = np.zeros(rows, np.int64)
    event[events_at] = 1
    return pd.DataFrame({"time": np.arange(rows), "a": np.sin(np.arange(rows)), "event": event})


EVENT_SPEC = DataSpec("time", None, ("a",), "event", "event", 2)


def test_fold_dry_run_names_the_fold_without_positives():
    cfg = load_config(None, {"data.event_col": "event", "data.horizon": 2, "window.length": 3, "split.folds": 2})
    assert fold_checks(_event_frame([5, 15, 25, 35]), EVENT_SPEC, cfg)[0].success
    # 36 windows (ends 2 … 37) in 3 blocks of 12; events at rows 5 and 8 make windows 3, 4, 6, 7 positive
    first, second = fold_checks(_event_frame([5, 8]), EVENT_SPEC, cfg)
    assert not first.success and not second.success
    assert first.observed == ("fold 1: the test part (windows ending 14 … 25, 12 windows) holds 0 positive window(s), "
                              "fewer than data.min_positives = 1; use fewer folds (--folds), longer data, or a longer "
                              "horizon (--horizon)")
    assert second.observed.startswith("fold 2: the test part (windows ending 26 … 37, 12 windows)")


@pytest.mark.parametrize("large", [True, False], ids=["large-table", "small-table"])
def test_the_contract_keeps_nothing_of_the_table_once_it_returns(tmp_path, monkeypatch, large):
    """GX caches the batch and a boolean Series per expectation and column in its data source, and its objects
    form reference cycles that hold them. With the automatic collector off (as good as off in a large process,
    whose oldest generation is seldom collected), a large table's cycles are collected by the contract itself;
    a small table's wait for the collector, which then frees them all."""
    import gc

    from lstm_pipeline.contract import runner

    def rows_held(n):  # pandas objects with the table's length still tracked anywhere in the process, garbage too
        # type(), not isinstance(): isinstance reads __class__, which wakes deprecated module proxies (a warning)
        return sum(1 for o in gc.get_objects() if type(o) in (pd.DataFrame, pd.Series) and len(o) == n)

    frame = pd.concat([clean()] * 500, ignore_index=True)  # 4,000 rows: a length nothing else here has
    frame["time"] = np.tile(np.arange(4), 1000)
    frame["unit"] = np.repeat([f"u{i}" for i in range(1000)], 4)
    monkeypatch.setattr(runner, "COLLECT_BYTES", 0 if large else 1 << 40)
    gc.collect()
    gc.disable()
    try:
        report = run_contract(frame, SPEC, CFG, docs_dir=tmp_path)
        assert report.success, [c for c in report.failures()]
        del frame
        if large:
            assert rows_held(4000) == 0
        else:
            assert rows_held(4000) > 0  # what the collection frees: the test sees cycles when they are there
            gc.collect()
            assert rows_held(4000) == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("group_bytes, most_columns", [(128 << 20, None), (1, 1)])
def test_gx_sees_a_bounded_group_of_columns_at_a_time_and_the_report_is_whole(monkeypatch, group_bytes, most_columns):
    """GX keeps every metric of a validation until it ends and filters the whole batch frame for each expectation:
    a large table is validated a group of columns at a time (forced here by a 1-byte budget: one column per run), a
    small one in a single run, and either way the report lists every result."""
    from great_expectations.core.batch_definition import BatchDefinition

    from lstm_pipeline.contract import runner

    monkeypatch.setattr(runner, "GROUP_BYTES", group_bytes)
    widths = []
    get_batch = BatchDefinition.get_batch

    def spy(self, *args, **kwargs):
        widths.append(kwargs["batch_parameters"]["dataframe"].shape)
        return get_batch(self, *args, **kwargs)

    monkeypatch.setattr(BatchDefinition, "get_batch", spy)
    df = clean()
    df.loc[3, "a"] = np.inf  # one failing check, on one column
    report = run_contract(df, SPEC, CFG)
    assert widths and all(rows == len(df) for rows, _ in widths)
    if most_columns is None:  # a small table: one run over every column the suite reads
        assert len(widths) == 1
    else:
        assert len(widths) > 1 and all(cols <= most_columns for _, cols in widths)
    suite_size = len(report.raw["results"])
    assert suite_size == 26 - 2  # every expectation's result (the two near-constant checks are not GX's)
    assert report.raw["statistics"] == {"evaluated_expectations": 24, "successful_expectations": 23,
                                        "unsuccessful_expectations": 1, "success_percent": 23 / 24 * 100}
    assert report.raw["success"] is False and not report.success
    assert list(failing(report)) == [("expect_column_values_to_not_be_in_set", "a")]
