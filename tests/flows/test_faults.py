"""Faults a production home meets: two identical runs started at once, a process killed with SIGKILL while it
registers, a workspace file damaged on disk and a cached result cut short. Each ends in one MLflow run, one
model version and stages that run again instead of trusting what they find."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from lstm_core.config import load_config
from lstm_pipeline import workspace
from tests.flows.test_resume import SCRIPT, _env, _events, tiny_tree

pytestmark = pytest.mark.usefixtures("prefect_harness")

MODEL = "resume-test"  # tiny_tree's register.model_name


def _setup(tmp_path: Path, **extra) -> tuple[Path, Path]:
    from tests.conftest import make_telemetry

    data = tmp_path / "telemetry.csv"
    make_telemetry(rows=200).to_csv(data, index=False)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(tiny_tree(data, **extra)), encoding="utf-8")
    return config_file, tmp_path / "home"


def _store(home: Path) -> MlflowClient:
    uri = f"sqlite:///{home / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _parent_runs(client: MlflowClient) -> list:
    experiment = client.get_experiment_by_name("lstm-rare-event").experiment_id
    return client.search_runs([experiment], "tags.`pipeline.resume_key` != ''")


@pytest.mark.slow
def test_two_identical_runs_started_at_once_give_one_run_and_one_version(tmp_path):
    config_file, home = _setup(tmp_path)
    command = [sys.executable, "-m", "lstm_app.cli", "train", "--config", str(config_file)]
    procs = [subprocess.Popen(command, env=_env(home), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [(p, *p.communicate(timeout=600)) for p in procs]
    finished = [o for o in outs if o[0].returncode == 0]
    refused = [o for o in outs if o[0].returncode != 0]
    assert len(finished) == 1 and len(refused) == 1, [(o[0].returncode, o[2][-2000:]) for o in outs]
    proc, stdout, stderr = refused[0]
    assert proc.returncode == 2 and "Traceback" not in stderr
    [line] = [ln for ln in stderr.splitlines() if ln.startswith("error:")]
    assert "an identical run (process " in line and "is already running on" in line

    client = _store(home)
    [run] = _parent_runs(client)
    assert run.info.status == "FINISHED" and "pipeline.resumed" not in run.data.tags  # never merged into
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert [(int(v.version), v.run_id) for v in versions] == [(1, run.info.run_id)]
    with sqlite3.connect(home / "mlflow.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# The flow, killed with SIGKILL the moment its model version exists: before its tags, description and alias.
KILLED_IN_REGISTRATION = r"""
import os, signal
from mlflow import MlflowClient
def die(self, *args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
MlflowClient.set_model_version_tag = die
""" + SCRIPT


@pytest.mark.slow
def test_a_run_killed_while_it_registers_ends_with_exactly_one_version_on_rerun(tmp_path):
    config_file, home = _setup(tmp_path)
    killed = subprocess.run([sys.executable, "-c", KILLED_IN_REGISTRATION, str(config_file)], env=_env(home),
                            cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-3000:]
    client = _store(home)
    [crashed] = _parent_runs(client)
    assert crashed.info.status == "RUNNING"
    [half] = client.search_model_versions(f"name = '{MODEL}'")
    assert half.tags == {} and client.get_registered_model(MODEL).aliases == {}  # created, nothing else yet

    rerun = subprocess.run([sys.executable, "-c", SCRIPT, str(config_file)], env=_env(home), cwd=tmp_path,
                           capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    summary = _events(rerun.stdout)[-1]["summary"]
    [run] = _parent_runs(client)
    assert run.info.run_id == crashed.info.run_id and run.info.status == "FINISHED"
    [version] = client.search_model_versions(f"name = '{MODEL}'")
    assert int(version.version) == 1 and version.run_id == run.info.run_id
    assert summary["registered_model"]["version"] == 1
    # the bookkeeping the kill cut off was finished by the rerun
    assert version.tags["run_id"] == run.info.run_id and "pipeline.identity" in version.tags
    assert "challenger" in client.get_registered_model(MODEL).aliases or \
        "champion" in client.get_registered_model(MODEL).aliases


def test_a_workspace_file_damaged_on_disk_is_caught_by_its_hash_and_written_again(home):
    arrays = {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "y": np.array([0, 1, 0])}
    uri = workspace.put_arrays(arrays, "test")
    path = workspace.uri_path(uri)
    assert workspace.intact(uri)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # one flipped byte, the size unchanged
    path.write_bytes(bytes(raw))
    assert not workspace.intact(uri)
    assert workspace.put_arrays(arrays, "test") == uri  # the same name, written whole again
    assert workspace.intact(uri)
    np.testing.assert_array_equal(workspace.get_arrays(uri)["x"], arrays["x"])

    written = workspace.put_written(lambda fh: fh.write(b"some table bytes"), ".bin", "table")
    assert workspace.intact(written)
    workspace.uri_path(written).write_bytes(b"some table bytez")
    assert not workspace.intact(written)
    workspace.uri_path(written).unlink()
    assert not workspace.intact(written)


def test_a_damaged_workspace_file_or_a_truncated_cached_result_makes_the_stage_run_again(home, tmp_path):
    from prefect import flow, task

    from tasks.policy import cached

    calls: list[int] = []
    results = tmp_path / "results"

    @task(**{**cached("data"), "result_storage": results})
    def stage(config, n: int) -> dict:
        calls.append(n)
        return {"uri": workspace.put_arrays({"v": np.full(64, n, dtype=np.float32)}, "stage"), "n": n}

    @flow
    def pipeline(config, n: int) -> dict:
        out = stage(config, n)
        return {**out, "v": workspace.get_array(out["uri"], "v").tolist()}

    cfg = load_config(None, {})
    first = pipeline(cfg, 3)
    assert pipeline(cfg, 3) == first and calls == [3]  # the second run read the cached record

    path = workspace.uri_path(first["uri"])
    raw = bytearray(path.read_bytes())
    raw[-30] ^= 0x01  # damaged on disk: same size, same name
    path.write_bytes(bytes(raw))
    again = pipeline(cfg, 3)
    assert calls == [3, 3] and again["v"] == [3.0] * 64 and workspace.intact(again["uri"])

    for record in results.iterdir():  # every stored record cut short, as by a crash or a full disk mid-write
        record.write_bytes(record.read_bytes()[: len(record.read_bytes()) // 2])
    assert pipeline(cfg, 3)["v"] == [3.0] * 64 and calls == [3, 3, 3]
    assert pipeline(cfg, 3)["v"] == [3.0] * 64 and calls == [3, 3, 3]  # and the new record is trusted again

