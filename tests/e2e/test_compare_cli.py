"""compare-resampling on the command line: the strategies are checked before anything runs."""
from __future__ import annotations

import typer.main
from typer.testing import CliRunner

from lstm_app.cli import app


def test_unknown_strategy_is_named_with_the_choices(telemetry_csv, home):
    result = CliRunner().invoke(app, ["compare-resampling", "--data", str(telemetry_csv), "--time-col", "timestamp",
                                      "--event-col", "failure", "--strategies", "none,smote,smoot"])
    assert result.exit_code == 2
    assert "unknown ['smoot']" in result.output and "balanced_bagging" in result.output
    assert not home.exists()  # refused before the pipeline home was made


def _options(command: str) -> set[str]:
    return {opt for param in typer.main.get_command(app).commands[command].params for opt in param.opts}


def test_compare_resampling_takes_every_data_and_training_flag_train_takes():
    """A user moves from train to compare-resampling without rewriting the command: only the strategy and the
    registry name differ (a comparison registers nothing)."""
    train, compare = _options("train"), _options("compare-resampling")
    assert train - compare == {"--resample", "--model-name"}
    assert compare - train == {"--strategies"}
    assert {"--data", "--sep", "--max-file-mb", "--missing", "--min-positives", "--label-lookahead"} <= compare
