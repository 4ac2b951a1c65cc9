"""compare-resampling on the command line: the strategies are checked before anything runs."""
from __future__ import annotations

from typer.testing import CliRunner

from lstm_pipeline.cli import app


def test_unknown_strategy_is_named_with_the_choices(telemetry_csv, home):
    result = CliRunner().invoke(app, ["compare-resampling", "--data", str(telemetry_csv), "--time-col", "timestamp",
                                      "--event-col", "failure", "--strategies", "none,smote,smoot"])
    assert result.exit_code == 2
    assert "unknown ['smoot']" in result.output and "balanced_bagging" in result.output
    assert not home.exists()  # refused before the pipeline home was made


def test_compare_resampling_takes_the_train_column_flags():
    result = CliRunner().invoke(app, ["compare-resampling", "--help"])
    assert result.exit_code == 0
    for flag in ("--data", "--time-col", "--entity-col", "--features", "--label-col", "--event-col", "--horizon",
                 "--label-lookahead", "--window", "--max-gap", "--folds", "--split-by", "--embargo", "--epochs",
                 "--batch-size", "--device", "--seed", "--sep", "--max-file-mb", "--missing", "--min-positives",
                 "--strategies"):
        assert flag in result.output
