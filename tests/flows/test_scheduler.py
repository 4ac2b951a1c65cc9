"""Scheduled runs fire: a real Prefect server's scheduler creates the runs of a one-minute cron, ``lstm-pipeline
serve`` picks them up, and both the training and the scoring run complete, on SQLite and on PostgreSQL.

Both servers and both ``serve`` processes run side by side, so the test waits for the cron ticks once.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.conftest import make_telemetry
from tests.flows.conftest import drop_pg_database, new_pg_database, prefect_pg_url, prefect_server

pytestmark = pytest.mark.slow

# the scheduler's loop and the runner's poll: seconds instead of a minute and ten seconds
FAST = {"PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "2", "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
DEADLINE_S = 330  # first tick (≤ 60 s) + training + the next tick (≤ 60 s) + scoring, on a busy 2-core machine


def _write_inputs(root: Path) -> Path:
    make_telemetry().to_csv(root / "telemetry.csv", index=False)
    make_telemetry(seed=1).drop(columns="failure").to_csv(root / "today.csv", index=False)
    config = {"data": {"path": str(root / "telemetry.csv"), "time_col": "timestamp", "entity_col": "machine",
                       "event_col": "failure", "horizon": 3},
              "window": {"length": 8}, "split": {"folds": 2, "val_fraction": 0.3},
              "model": {"hidden": 8, "layers": 1}, "train": {"epochs": 2, "min_steps": 20, "batch_size": 64},
              "evaluate": {"baselines": ["prior", "logistic"]},
              "register": {"experiment": "scheduled", "model_name": "scheduled-lstm"}}
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextlib.contextmanager
def _serving(root: Path, api: str):
    """``lstm-pipeline serve`` with both crons every minute; scoring uses the challenger the training run
    registers (the gate may keep a tiny model from becoming champion)."""
    env = {**os.environ, **FAST, "PREFECT_API_URL": api, "LSTM_PIPELINE_HOME": str(root / "home")}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(root / "serve.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lstm_app.cli", "serve", "--config", str(_write_inputs(root)),
         "--cron", "* * * * *", "--score-cron", "* * * * *", "--score-data", str(root / "today.csv"),
         "--alias", "challenger"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root, start_new_session=True)
    try:
        yield proc
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _runs(api: str) -> list:
    from prefect.client.orchestration import SyncPrefectClient

    with SyncPrefectClient(api) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        runs = client.read_flow_runs()
    return [SimpleNamespace(**dict(run), flow_name=flows.get(run.flow_id)) for run in runs]


def _done(runs: list) -> tuple | None:
    """The first COMPLETED scheduled training run and the first COMPLETED scheduled scoring run after it."""
    trained = sorted((r for r in runs if r.flow_name == "training_pipeline" and r.state_name == "Completed"),
                     key=lambda r: r.end_time)
    if not trained:
        return None
    scored = sorted((r for r in runs if r.flow_name == "batch_scoring" and r.state_name == "Completed"
                     and r.start_time > trained[0].end_time), key=lambda r: r.end_time)
    return (trained[0], scored[0]) if scored else None


def test_cron_schedules_create_runs_that_complete(tmp_path):
    db = new_pg_database("lstm_pipeline_sched")
    backends = {"sqlite": f"sqlite+aiosqlite:///{tmp_path / 'sqlite' / 'prefect.db'}", "postgres": prefect_pg_url(db)}
    try:
        with contextlib.ExitStack() as stack:
            apis, procs = {}, {}
            for name, url in backends.items():
                root = tmp_path / name
                root.mkdir()
                apis[name] = stack.enter_context(prefect_server(root, url, **FAST))
                procs[name] = stack.enter_context(_serving(root, apis[name]))
            found: dict[str, tuple] = {}
            deadline = time.monotonic() + DEADLINE_S
            while len(found) < len(backends) and time.monotonic() < deadline:
                for name, api in apis.items():
                    assert procs[name].poll() is None, (tmp_path / name / "serve.log").read_text()[-3000:]
                    if name not in found and (done := _done(_runs(api))):
                        found[name] = done
                time.sleep(3)
            logs = {n: (tmp_path / n / "serve.log").read_text()[-4000:] for n in backends if n not in found}
            assert not logs, logs
            for name, (train, score) in found.items():
                _check_runs(name, train, score, _runs(apis[name]), tmp_path / name / "home")
    finally:
        drop_pg_database(db)


def _check_runs(backend: str, train, score, runs: list, home: Path) -> None:
    from mlflow import MlflowClient

    for run in (train, score):
        assert run.auto_scheduled, (backend, run.name)  # created by the server's scheduler, not by hand
        tick = run.expected_start_time.astimezone(timezone.utc)
        assert (tick.second, tick.microsecond) == (0, 0)  # on a minute of the cron
    # the scheduler's generated name is replaced by what the run is: file, window, strategy and its cron tick
    stamp = train.expected_start_time.astimezone(timezone.utc).strftime("%m%d-%H%M")
    assert train.name == f"telemetry-w8-none-{stamp}"
    assert score.name.startswith("today-scheduled-lstm@challenger-")
    assert not [r.name for r in runs if r.flow_name == "training_pipeline" and r.state_name in ("Failed", "Crashed")]
    # the MLflow run carries the flow run's name and id
    uri = f"sqlite:///{home / 'mlflow.db'}"
    client = MlflowClient(uri, uri)
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("scheduled").experiment_id],
                                       f"tags.`prefect.flow_run_id` = '{train.id}'")
    assert mlflow_run.info.run_name == train.name
    assert mlflow_run.info.status == "FINISHED"
    lag = (train.end_time - train.expected_start_time).total_seconds()
    print(f"{backend}: cron tick {train.expected_start_time:%H:%M:%S} -> training COMPLETED after {lag:.1f} s; "
          f"scoring COMPLETED after {(score.end_time - score.expected_start_time).total_seconds():.1f} s "
          f"(at {datetime.now(timezone.utc):%H:%M:%S})")
