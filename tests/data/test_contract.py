"""The data contract on tiny hand-built tables: each broken rule is reported with its column and its lines."""
from __future__ import annotations

import io
import pickle

import numpy as np
import pandas as pd
import pytest

from lstm_core.data import DataSpec
from lstm_pipeline.contract import ContractError, build_suite, run_contract

SPEC = DataSpec(
    time_col="time", entity_col="unit", features=("a", "b"), target_col="label", mode="label", lookahead=0
)


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


def test_clean_frame_passes_every_check():
    report = run_contract(clean(), SPEC)
    listed = {(c.expectation, c.column) for c in report.checks}
    expected = {("expect_column_to_exist", col) for col in ("time", "unit", "a", "b", "label")}
    expected |= {("expect_column_values_to_not_be_null", col) for col in ("time", "unit", "a", "b", "label")}
    expected |= {("expect_column_values_to_be_in_type_list", col) for col in ("a", "b")}
    expected |= {("expect_column_values_to_be_in_set", "label"), ("expect_column_max_to_be_between", "label")}
    assert listed == expected
    assert len(report.checks) == 14
    assert report.success and report.failures() == [] and report.message() == ""
    assert report.raw["success"] is True


def test_suite_is_built_from_the_spec():
    spec = DataSpec("t", None, ("x", "y", "z"), "event", "event", 3)
    configs = [(e.expectation_type, e.column) for e in build_suite(spec).expectations]
    assert ("expect_column_to_exist", "event") in configs
    assert [c for t, c in configs if t == "expect_column_values_to_be_in_type_list"] == ["x", "y", "z"]
    assert len(configs) == 5 + 3 + 5 + 2  # exist, numeric, not-null per column; in-set and max on the target


def test_null_feature_names_column_and_line():
    df = clean()
    df.loc[3, "a"] = np.nan
    report = run_contract(df, SPEC)
    assert not report.success
    assert list(failing(report)) == [("expect_column_values_to_not_be_null", "a")]
    assert report.message() == "column 'a': 1 null value(s) at line 5"


def test_lines_count_positions_not_index_labels():
    df = clean()
    df.loc[3, "a"] = np.nan
    df.index = [70, 60, 50, 40, 30, 20, 10, 0]  # a sorted or filtered frame keeps odd labels
    assert run_contract(df, SPEC).message() == "column 'a': 1 null value(s) at line 5"


def test_label_outside_0_1_names_the_value():
    df = clean()
    df.loc[2, "label"] = 2
    report = run_contract(df, SPEC)
    assert list(failing(report)) == [("expect_column_values_to_be_in_set", "label")]
    assert report.message() == "column 'label': 1 value(s) outside {0, 1}: 2 (line 4)"


def test_missing_label_is_reported_and_the_rest_still_runs():
    report = run_contract(clean().drop(columns=["label"]), SPEC)
    assert list(failing(report)) == [("expect_column_to_exist", "label")]
    assert "column 'label': not found" in report.message()
    assert [c.expectation for c in report.checks if c.column == "label"] == ["expect_column_to_exist"]
    assert sum(c.success for c in report.checks) == 10  # every check of the other four columns passed


def test_text_value_in_numeric_column_object_dtype():
    df = clean()
    df["b"] = df["b"].astype(object)
    df.loc[5, "b"] = "abc"
    report = run_contract(df, SPEC)
    assert list(failing(report)) == [("expect_column_values_to_be_in_type_list", "b")]
    assert report.message() == (
        "column 'b': dtype object, expected a numeric dtype; 1 text value(s): 'abc' (line 7)"
    )


def test_text_value_in_numeric_column_read_from_csv():
    df = clean().astype({"b": str})
    df.loc[5, "b"] = "abc"
    read = pd.read_csv(io.StringIO(df.to_csv(index=False)))  # pandas reads the whole column as text
    report = run_contract(read, SPEC)
    assert list(failing(report)) == [("expect_column_values_to_be_in_type_list", "b")]
    assert "column 'b'" in report.message() and "'abc' (line 7)" in report.message()


def test_label_all_zeros_fails():
    report = run_contract(clean().assign(label=0), SPEC)
    assert list(failing(report)) == [("expect_column_max_to_be_between", "label")]
    assert report.message().startswith("column 'label': max is 0")


def test_markdown_has_a_row_per_check():
    df = clean()
    df.loc[3, "a"] = np.nan
    report = run_contract(df, SPEC)
    lines = report.markdown().splitlines()
    assert lines[0] == "| expectation | column | result | observed |"
    assert len(lines) == 2 + len(report.checks)
    fails = [line for line in lines if "| FAIL |" in line]
    assert fails == ["| expect_column_values_to_not_be_null | a | FAIL | 1 null value(s) at line 5 |"]


def test_contract_error_carries_the_report():
    df = clean()
    df.loc[3, "a"] = np.nan
    report = run_contract(df, SPEC)
    error = ContractError(report)
    assert isinstance(error, ValueError)
    assert str(error) == report.message() and error.report is report
    again = pickle.loads(pickle.dumps(error))  # Prefect and Dask ship exceptions between processes
    assert str(again) == str(error) and again.report.failures() == report.failures()


def test_nothing_is_written_to_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_contract(clean(), SPEC)
    bad = clean().drop(columns=["unit"])
    bad.loc[0, "a"] = np.nan
    with pytest.raises(ContractError):
        report = run_contract(bad, SPEC)
        raise ContractError(report)
    assert list(tmp_path.iterdir()) == []
