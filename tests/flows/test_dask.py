"""Scale-out: the training flow on a 2-worker Dask LocalCluster gives the local run's metrics exactly, and its
folds train at the same time."""
from __future__ import annotations

import json

import pytest

from lstm_core.config import load_config
from lstm_pipeline.execution import task_runner

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_harness")]


def _config(data, executor: str):
    return load_config(None, {
        "data.path": str(data), "data.time_col": "timestamp", "data.entity_col": "machine",
        "data.event_col": "failure", "data.horizon": 3, "window.length": 8, "split.folds": 2,
        "split.val_fraction": 0.3, "train.epochs": 3, "train.min_steps": 20, "train.batch_size": 32, "model.hidden": 8, "model.layers": 1,
        "evaluate.baselines": ["prior", "logistic"], "register.enabled": False,
        "execution.executor": executor, "execution.dask_workers": 2,
    })


def _train_intervals(flow_run_id) -> dict[str, tuple]:
    from tests.flows.conftest import settled_task_runs

    runs = settled_task_runs(flow_run_id)
    return {r.name: (r.start_time, r.end_time) for r in runs if r.name.startswith("train-fold-")}


def test_dask_run_matches_local_run_and_trains_folds_in_parallel(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    from flows.training import training_pipeline
    from tests.conftest import make_telemetry

    data = tmp_path / "telemetry.csv"
    make_telemetry().to_csv(data, index=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    monkeypatch.setenv("LSTM_PIPELINE_HOME", str(tmp_path / "local-home"))
    local_cfg = _config(data, "local")
    local = training_pipeline.with_options(task_runner=task_runner(local_cfg))(local_cfg)

    # workers are separate processes: they read the home from the environment they inherit. The cluster is
    # started here and joined by address (the dask_address path) so both workers are up before the first task.
    from distributed import Client, LocalCluster

    monkeypatch.setenv("LSTM_PIPELINE_HOME", str(tmp_path / "dask-home"))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2, timeout=120)
        dask_cfg = _config(data, "dask").model_copy(deep=True)
        dask_cfg.execution.dask_address = cluster.scheduler_address
        state = training_pipeline.with_options(task_runner=task_runner(dask_cfg))(dask_cfg, return_state=True)
        on_dask = state.result()

    # every model's test metrics and threshold, exactly; as JSON text, where an undefined metric (NaN) equals itself
    for part in ("folds", "aggregate", "episodes"):
        assert json.dumps(on_dask.get(part), sort_keys=True) == json.dumps(local.get(part), sort_keys=True), part
    assert (tmp_path / "dask-home" / "workspace").is_dir()  # the workers wrote where the flow reads

    spans = _train_intervals(state.state_details.flow_run_id)
    (s1, e1), (s2, e2) = spans["train-fold-1"], spans["train-fold-2"]
    assert s1 < e2 and s2 < e1, f"fold 1 trained {s1}..{e1}, fold 2 {s2}..{e2}: no overlap"


def test_a_run_on_separate_dask_worker_processes_caches_its_stages_and_reruns_from_the_cache(tmp_path, monkeypatch):
    """Workers started as their own processes (`dask scheduler`, `dask worker`), as on a cluster: every stage's
    cache key is computed there, so a second run of the same config reads each stage instead of redoing it."""
    import os
    import subprocess
    import sys
    import time
    from pathlib import Path

    pytest.importorskip("distributed")
    from flows.training import training_pipeline
    from tests.conftest import make_telemetry
    from tests.flows.conftest import settled_task_runs

    data = tmp_path / "telemetry.csv"
    make_telemetry().to_csv(data, index=False)
    home = tmp_path / "home"
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("LSTM_PIPELINE_HOME", str(home))
    env = {**os.environ, "LSTM_PIPELINE_HOME": str(home)}
    dask = str(Path(sys.executable).with_name("dask"))
    address_file = tmp_path / "scheduler.json"
    logs = [open(tmp_path / f"{name}.log", "w") for name in ("scheduler", "worker")]  # noqa: SIM115
    scheduler = subprocess.Popen([dask, "scheduler", "--port", "0", "--no-dashboard", "--scheduler-file",
                                  str(address_file)], env=env, cwd=tmp_path, stdout=logs[0], stderr=subprocess.STDOUT)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists():
            assert time.monotonic() < deadline and scheduler.poll() is None, "the scheduler did not start"
            time.sleep(0.2)
        address = json.loads(address_file.read_text())["address"]
        worker = subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1", "--no-dashboard"],
                                  env=env, cwd=tmp_path, stdout=logs[1], stderr=subprocess.STDOUT)
        from distributed import Client

        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
        cfg = _config(data, "dask").model_copy(deep=True)
        cfg.execution.dask_address = address
        first = training_pipeline.with_options(task_runner=task_runner(cfg))(cfg, return_state=True)
        second = training_pipeline.with_options(task_runner=task_runner(cfg))(cfg, return_state=True)
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
        for log in logs:
            log.close()

    worker_log = (tmp_path / "worker.log").read_text()
    assert "computing cache key" not in worker_log and "could not get source code" not in worker_log
    runs = {r.name: r.state.name for r in settled_task_runs(second.state_details.flow_run_id)}
    stages = [name for name in runs if name.startswith(("prepare-fold-", "train-fold-", "evaluate-fold-"))]
    assert len(stages) == 6 and all(runs[name] == "Cached" for name in stages), runs
    first_runs = {r.name: r.state.name for r in settled_task_runs(first.state_details.flow_run_id)}
    assert all(first_runs[name] == "Completed" for name in stages), first_runs
    assert json.dumps(second.result()["aggregate"], sort_keys=True) == json.dumps(first.result()["aggregate"],
                                                                                   sort_keys=True)
