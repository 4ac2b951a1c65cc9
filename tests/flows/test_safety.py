"""Nothing is unpickled from shared storage: a pickle planted in place of a registered model, a workspace file,
a checkpoint or a cached result is refused, and the code inside it never runs. Files are replaced atomically."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from lstm_core.config import load_config
from lstm_core.data import DataError, read_table, resolve_spec, to_series
from lstm_core.scoring import fit_final
from lstm_core.windows import make_windows
from lstm_pipeline import artifacts, registry_model, safe_files, scoring, tracking, workspace

WINDOW = 6


class Planted:
    """A pickle that, when loaded, creates ``marker``: what an attacker with write access to a store plants."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps(Planted(marker)))


@pytest.fixture
def scorer(telemetry_csv):
    cfg = load_config(None, {"data.path": str(telemetry_csv), "data.time_col": "timestamp",
                             "data.entity_col": "machine", "data.event_col": "failure", "data.horizon": 3,
                             "window.length": WINDOW, "train.epochs": 1, "train.batch_size": 64,
                             "model.hidden": 4, "model.layers": 1})
    df = read_table(telemetry_csv)
    series = to_series(df, resolve_spec(df, cfg.data))
    return fit_final(series, make_windows(series, WINDOW), cfg, epochs=1, threshold=0.5), cfg, df


def _register(scorer, cfg, df, name: str) -> dict:
    run_id = tracking.start_run("safety", "fit", {}, {})
    example = df[["temp", "vibration"]].to_numpy(np.float32)[None, :WINDOW]
    out = tracking.log_and_register(run_id, scorer, example, name, {}, cfg.model_dump(mode="json"))
    tracking.finish_run(run_id)
    return out


def _model_dir(name: str, version: int) -> Path:
    import mlflow.artifacts

    tracking.client()
    return Path(mlflow.artifacts.download_artifacts(f"models:/{name}/{version}"))


def test_registered_model_is_safetensors_and_json_and_scores_the_same(home, scorer):
    import mlflow.pyfunc

    model, cfg, df = scorer
    out = _register(model, cfg, df, "safe-model")
    files = {p.relative_to(_model_dir("safe-model", out["version"])).as_posix()
             for p in _model_dir("safe-model", out["version"]).rglob("*") if p.is_file()}
    assert {"data/scorer/weights.safetensors", "data/scorer/scorer.json", "data/scorer/pipeline_config.json",
            "MLmodel", "input_example.json"} <= files
    assert not [f for f in files if f.endswith((".pkl", ".pth", ".pt", ".cloudpickle"))]
    mlmodel = (_model_dir("safe-model", out["version"]) / "MLmodel").read_text()
    assert "loader_module: lstm_pipeline.registry_model" in mlmodel and "input_example" in mlmodel
    assert "signature" in mlmodel

    loaded, config = scoring.load(f"models:/safe-model/{out['version']}")
    x = torch.as_tensor(df[["temp", "vibration"]].to_numpy(np.float32)[None, :WINDOW])
    with torch.inference_mode():
        assert torch.equal(loaded(x), model(x))
    assert loaded.spec == model.spec and loaded.threshold == model.threshold
    assert config.window.length == WINDOW
    pyfunc = mlflow.pyfunc.load_model(f"models:/safe-model/{out['version']}")
    assert np.allclose(pyfunc.predict(x.numpy()), model(x).detach().numpy())


def test_an_ensemble_scorer_round_trips_through_the_workspace(home, scorer):
    model, cfg, _ = scorer
    from lstm_core.model import LSTMClassifier
    from lstm_core.scoring import RareEventScorer, ScoringSpec

    torch.manual_seed(0)
    nets = [LSTMClassifier(2, cfg.model).eval() for _ in range(3)]
    ensemble = RareEventScorer(nets, np.array([1.0, 2.0]), np.array([3.0, 4.0]), ScoringSpec(**model.spec),
                               {"pr_auc": float("nan"), "held_out": "words"})
    back = artifacts.get_torch(artifacts.put_torch(ensemble, "scorer"))
    x = torch.randn(5, WINDOW, 2)
    with torch.inference_mode():
        assert torch.equal(back(x), ensemble(x))
    assert len(back.networks) == 3 and back.evaluation["held_out"] == "words"
    assert np.isnan(back.evaluation["pr_auc"])


def test_an_old_pickled_version_and_a_planted_weights_file_are_refused_unexecuted(home, scorer, tmp_path):
    model, cfg, df = scorer
    marker = tmp_path / "pwned"
    # a version in the old layout: MLflow's pytorch flavour with a pickled model
    old = tmp_path / "old-model"
    (old / "data").mkdir(parents=True)
    (old / "MLmodel").write_text("flavors:\n  pytorch:\n    model_data: data\n    serialization_format: pickle\n")
    plant(old / "data" / "model.pth", marker)
    c = tracking.client()
    run_id = tracking.start_run("safety", "old", {}, {})
    c.log_artifacts(run_id, str(old), "model")
    c.create_registered_model("old-model")
    version = c.create_model_version("old-model", f"runs:/{run_id}/model", run_id=run_id).version
    with pytest.raises(DataError, match=rf"^model 'models:/old-model/{version}' is in the old pickled format.*"
                                        r"retrain it"):
        scoring.load(f"models:/old-model/{version}")

    # a safe version whose weights file someone replaced with a pickle
    out = _register(model, cfg, df, "tampered")
    weights = list(home.rglob("weights.safetensors"))  # in the embedded store's artifact folder
    assert weights
    for path in weights:
        plant(path, marker)
    with pytest.raises(DataError, match="old pickled format"):
        scoring.load(f"models:/tampered/{out['version']}")
    assert not marker.exists()


def test_planted_workspace_files_and_checkpoints_are_refused_unexecuted(home, scorer, tmp_path):
    model, _, _ = scorer
    marker = tmp_path / "pwned"
    uri = artifacts.put_torch(model, "scorer")
    plant(workspace.uri_path(uri), marker)
    with pytest.raises(safe_files.UnsafeFile, match="not loaded"):
        artifacts.get_torch(uri)

    arrays = workspace.put_arrays({"rows": np.arange(4.0)}, "series")
    np.savez(workspace.uri_path(arrays), rows=np.array([Planted(marker)], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        workspace.get_arrays(arrays)
    with pytest.raises(TypeError, match="Python objects"):
        workspace.put_arrays({"bad": np.array([{}], dtype=object)})

    ckpt = workspace.FileCheckpointer(tmp_path / "fold-1.pt")
    plant(ckpt.path, marker)
    assert ckpt.load() is None  # a resumed run trains from the start instead
    assert not marker.exists()


def test_a_checkpoint_round_trips_tuples_int_keys_and_rng_states(tmp_path):
    import random

    state = {"rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
             "optimizer": {"state": {0: {"step": torch.tensor(3.0)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
             "best": -float("inf"), "ema": None, "history": [{"epoch": 1, "loss": np.float64(0.5)}]}
    ckpt = workspace.FileCheckpointer(tmp_path / "c.pt")
    ckpt.save(state)
    back = ckpt.load()
    assert back["rng"]["python"] == state["rng"]["python"]
    assert all(np.array_equal(a, b) for a, b in zip(back["rng"]["numpy"], state["rng"]["numpy"], strict=True))
    assert torch.equal(back["rng"]["torch"], state["rng"]["torch"])
    assert back["optimizer"]["state"][0]["step"].item() == 3.0 and back["best"] == -float("inf")
    assert back["history"] == [{"epoch": 1, "loss": 0.5}] and back["ema"] is None


def test_atomic_write_leaves_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "out" / "summary.json"
    safe_files.atomic_write(target, json.dumps({"ok": 1}))

    def broken(fh):
        fh.write(b'{"half')
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        safe_files.atomic_write(target, broken)
    assert json.loads(target.read_text()) == {"ok": 1}
    assert os.listdir(target.parent) == ["summary.json"]  # the temporary file is gone too


def test_predictions_file_is_replaced_whole(tmp_path):
    out = tmp_path / "p.csv"
    scoring.write(pd.DataFrame({"score": [0.25]}), out)
    scoring.write(pd.DataFrame({"score": [0.5, 0.75]}), out)
    assert pd.read_csv(out)["score"].tolist() == [0.5, 0.75]
    assert os.listdir(tmp_path) == ["p.csv"]


def test_registry_model_refuses_a_folder_without_its_files(tmp_path):
    with pytest.raises(registry_model.OldModelFormat):
        registry_model.load(tmp_path)


def _planted_record(marker: Path) -> bytes:
    """A Prefect result record that names the pickle serializer: Prefect would unpickle its result to read it."""
    import base64

    import prefect

    payload = base64.b64encode(pickle.dumps(Planted(marker))).decode()
    return json.dumps({"metadata": {"storage_key": None, "expiration": None,
                                    "serializer": {"type": "pickle", "picklelib": "pickle", "picklelib_version": None},
                                    "prefect_version": prefect.__version__, "storage_block_id": None},
                       "result": payload}).encode()


@pytest.mark.usefixtures("prefect_harness")
def test_a_planted_cached_result_is_never_read_and_the_stage_runs_again(home, tmp_path):
    from prefect import flow, task

    from tasks.policy import cached

    calls: list[int] = []
    results = tmp_path / "results"

    @task(**{**cached("data"), "result_storage": results})
    def stage(config, n: int) -> dict:
        calls.append(n)
        return {"uri": (home / "absent-is-fine").as_posix(), "n": n, "features": ["a", "b"]}

    @flow
    def pipeline(config, n: int) -> dict:
        return stage(config, n)

    cfg = load_config(None, {})
    assert pipeline(cfg, 1) == pipeline(cfg, 1) == {"uri": (home / "absent-is-fine").as_posix(), "n": 1,
                                                     "features": ["a", "b"]}
    assert calls == [1]  # the second run read the JSON record
    [record] = list(results.iterdir())
    assert json.loads(record.read_bytes())["metadata"]["serializer"]["type"] == "json"

    marker = tmp_path / "pwned"
    record.write_bytes(_planted_record(marker))
    assert pipeline(cfg, 1)["n"] == 1 and calls == [1, 1]
    plant(record, marker)  # a bare pickle in its place
    for other in results.iterdir():
        plant(other, marker)
    assert pipeline(cfg, 1)["n"] == 1 and calls == [1, 1, 1]
    assert not marker.exists()

    # the planted record is live: Prefect's own reader runs it
    from prefect._internal.result_records import ResultRecord

    control = tmp_path / "control"
    ResultRecord.deserialize(_planted_record(control))
    assert control.exists()


def test_every_file_the_cli_writes_is_renamed_into_place(tmp_path, monkeypatch):
    from lstm_app import cli, demo
    from lstm_pipeline import tuning

    renamed: list[Path] = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (renamed.append(Path(dst)), real(src, dst))[1])
    cli._write_json(tmp_path / "s" / "summary.json", {"ok": 1}, "summary")
    tuning.write_yaml(load_config(None, {"window.length": 7}), tmp_path / "best.yaml")
    scoring.write(pd.DataFrame({"score": [0.5]}), tmp_path / "p.parquet")
    demo._bundled_csv(tmp_path, "d.csv", lambda: pd.DataFrame({"a": [1, 2]}))
    assert renamed == [tmp_path / "s" / "summary.json", tmp_path / "best.yaml", tmp_path / "p.parquet",
                       tmp_path / "datasets" / "d.csv", tmp_path / "datasets" / "d.csv.sha256"]
    assert load_config(tmp_path / "best.yaml").window.length == 7
    assert sorted(os.listdir(tmp_path)) == ["best.yaml", "datasets", "p.parquet", "s"]  # no temporary left


def test_the_demo_rewrites_a_truncated_bundled_csv(tmp_path):
    from lstm_app import demo

    loads: list[int] = []

    def load():
        loads.append(1)
        return pd.DataFrame({"engine": [1, 1, 2], "s1": [0.5, 0.25, 0.125]})

    path = demo._bundled_csv(tmp_path, "bundled.csv", load)
    whole = path.read_bytes()
    assert demo._bundled_csv(tmp_path, "bundled.csv", load) == path and len(loads) == 1  # reused unchanged
    path.write_bytes(whole[:-7])  # cut short, as by a crash mid-write
    demo._bundled_csv(tmp_path, "bundled.csv", load)
    assert len(loads) == 2 and path.read_bytes() == whole
    (path.parent / "bundled.csv.sha256").unlink()  # a copy from before the checksum: not trusted either
    demo._bundled_csv(tmp_path, "bundled.csv", load)
    assert len(loads) == 3 and path.read_bytes() == whole


def test_two_processes_with_one_home_and_key_run_one_at_a_time(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys, time\n"
        "from lstm_pipeline.home_lock import run_lock, RunBusy\n"
        "try:\n"
        "    with run_lock(sys.argv[1], 'same-key', wait_s=float(sys.argv[2])):\n"
        "        print('ran', time.time(), flush=True); time.sleep(1.5); print('done', time.time(), flush=True)\n"
        "except RunBusy as exc:\n"
        "    print('busy', exc, flush=True)\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(repo)}

    def start(wait: float):
        return subprocess.Popen([sys.executable, "-c", script, str(tmp_path), str(wait)], stdout=subprocess.PIPE,
                                text=True, env=env)

    first, second = start(0), start(0)
    outs = sorted(p.communicate(timeout=60)[0] for p in (first, second))
    assert outs[0].startswith("busy an identical run (process ") and "is already running on" in outs[0]
    assert outs[0].count("\n") == 1 and outs[1].startswith("ran")  # one line, and the other ran

    first, second = start(10), start(10)  # waiting instead: both run, never at the same time
    spans = []
    for p in (first, second):
        lines = p.communicate(timeout=60)[0].split()
        spans.append((float(lines[1]), float(lines[3])))
    (a_start, a_end), (b_start, b_end) = sorted(spans)
    assert a_end <= b_start
