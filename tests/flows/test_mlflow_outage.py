"""MLflow down: the I/O tasks retry, the run fails with one line naming the tracking URI, nothing is registered."""
from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lstm_app.cli import app
from lstm_pipeline import settings, tracking
from tests.flows.conftest import _free_port, settled_task_runs
from tests.flows.test_training_flow import tiny_config

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


@pytest.fixture
def mlflow_down(home, tmp_path, monkeypatch) -> str:
    """A tracking URI nobody listens on; MLflow's own HTTP retries off, the tasks' backoff shortened to zero."""
    uri = f"http://127.0.0.1:{_free_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    monkeypatch.setenv(settings.RETRY_SCALE_ENV, "0")
    monkeypatch.chdir(tmp_path)
    return uri


def test_io_tasks_retry_then_the_flow_fails_naming_the_uri_and_nothing_is_registered(mlflow_down, telemetry_csv,
                                                                                     tmp_path, monkeypatch):
    from flows.training import training_pipeline

    state = training_pipeline(tiny_config(telemetry_csv), return_state=True)
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, tracking.TrackingUnavailable)
    assert str(error) == (f"MLflow tracking server {mlflow_down} is unreachable (connection refused); "
                          "start it, or point MLFLOW_TRACKING_URI at a running one")
    mine = settled_task_runs(state.state_details.flow_run_id)
    (opening,) = [r for r in mine if r.state.is_failed()]  # the task opening the MLflow run
    assert opening.run_count == 4  # the first attempt and IO_RETRY's 3 retries
    assert all(r.state.is_completed() for r in mine if r is not opening)  # reading the file needs no MLflow
    # the store is back (the embedded one under home): no model was registered anywhere, no ./mlruns appeared
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.client().search_registered_models() == []
    assert not (tmp_path / "mlruns").exists()


def test_train_command_prints_one_line_not_a_traceback(mlflow_down, telemetry_csv):
    args = ["train", "--data", str(telemetry_csv), "--time-col", "timestamp", "--entity-col", "machine",
            "--event-col", "failure", "--horizon", "3", "--window", "8", "--folds", "2", "--epochs", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: MLflow tracking server {mlflow_down} is unreachable (connection refused); "
                      "start it, or point MLFLOW_TRACKING_URI at a running one"]
