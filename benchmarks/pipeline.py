"""Time and memory of each stage of the real training flow on synthetic telemetry with a planted rare event.

    python -m benchmarks.pipeline --rows 1000000 --features 32 --window 48 --epochs 1

It writes a Parquet file shaped like a user's table (time, entity, features, label), runs ``training_pipeline``
on it in this process (local executor, embedded MLflow and Prefect under a temporary home), then reads each
task run's start and end from the Prefect API and the process's resident memory, sampled every 20 ms, inside
those intervals. It prints exactly one JSON line: per stage and per task the seconds and the peak RSS, plus
the totals. RSS is the whole process's: each task hands its freed memory back when it ends, so a task's peak
is what it held on top of what the flow keeps between tasks; each task's RSS when it started is printed too.

Stages group the flow's tasks: validation (load, validate), windowing (window, split, prepare-fold-k),
resampling, training (train-fold-k, refit), evaluation (evaluate-fold-k, baselines-fold-k) and MLflow logging
(start-run, log-fold-k, aggregate, register, gate, summarise, finish-run).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.synthetic import rows_and_labels

STAGES = {
    "validation": ("load", "validate"),
    "windowing": ("window", "split", "prepare-fold"),
    "resampling": ("resample",),
    "training": ("train", "refit"),
    "evaluation": ("evaluate", "baselines", "interpret"),
    "mlflow_logging": ("open-run", "start-run", "log-fold", "aggregate", "register", "gate", "summarise", "finish-run"),
}


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag, default in (("rows", 100_000), ("features", 16), ("window", 48), ("hidden", 64), ("layers", 2),
                          ("batch", 256), ("epochs", 1), ("folds", 3), ("entities", 10)):
        p.add_argument(f"--{flag}", type=int, default=default)
    p.add_argument("--strategy", default="none", help="resample.strategy")
    p.add_argument("--baselines", default="prior,persistence,logistic,hgb")
    p.add_argument("--rate", type=float, default=0.02, help="share of positive rows")
    p.add_argument("--keep", type=Path, default=None, help="keep the home folder here (default: a temporary one)")
    p.add_argument("--demo", choices=("cmapss", "beijing"), default=None,
                   help="run the demo's flow on its bundled data set instead of a synthetic table (the other "
                        "size and model flags are then ignored: the demo's config is train's defaults)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any dotted config override over the run's config, e.g. train.min_steps=0 (repeatable)")
    return p.parse_args(argv)


def synthetic_table(rows: int, features: int, window: int, entities: int, rate: float) -> pd.DataFrame:
    """One contiguous block of rows per entity, integer time steps, label = the planted event."""
    x, y = rows_and_labels(rows, features, window, rate=rate)
    per = -(-rows // entities)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)], copy=False)
    frame.insert(0, "step", np.arange(rows, dtype=np.int64) % per)
    frame.insert(0, "machine", (np.arange(rows) // per).astype(np.int32))
    frame["label"] = y
    return frame


class RssSampler:
    """Resident set size of this process, sampled on a thread: (unix time, bytes) pairs."""

    def __init__(self, every: float = 0.02) -> None:
        self.every, self.samples, self._stop = every, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from lstm_pipeline.execution import resident_bytes

        while not self._stop.is_set():
            self.samples.append((time.time(), resident_bytes() or 0))
            time.sleep(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self, start: float, end: float) -> float:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return round(max(inside, default=0) / 2**20, 1)

    def at_mb(self, when: float) -> float:
        """RSS of the last sample at or before ``when``: what a task started on."""
        before = [rss for t, rss in self.samples if t <= when]
        return round((before[-1] if before else 0) / 2**20, 1)


def stage_of(task_name: str) -> str | None:
    """The stage of a task run, from its name ('train-fold-2', 'validate-3f1')."""
    for stage, names in STAGES.items():
        if any(task_name == n or task_name.startswith(f"{n}-") for n in names):
            return stage
    return None


def task_label(task_name: str) -> str:
    """'validate-3f1' -> 'validate' (Prefect's random suffix); 'train-fold-2' stays as it is."""
    head, _, tail = task_name.rpartition("-")
    return head if head and len(tail) == 3 and all(c in "0123456789abcdef" for c in tail) else task_name


def task_intervals(flow_run_id) -> list[tuple[str, float, float]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
    return [(r.name, r.start_time.timestamp(), r.end_time.timestamp()) for r in runs if r.start_time and r.end_time]


def run(args: argparse.Namespace) -> dict:
    home = args.keep or Path(tempfile.mkdtemp(prefix="lstm-pipeline-bench-"))
    os.environ["LSTM_PIPELINE_HOME"] = str(home)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from lstm_pipeline import settings

    settings.prepare_home()
    from lstm_app.runner import _quiet_console

    _quiet_console()
    if args.demo:
        from lstm_app.demo import demo_config

        cfg = demo_config(home, dataset=args.demo)
        path = Path(cfg.data.path)
    else:
        cfg, path = synthetic_config(args, home)
    if args.set:
        import yaml

        cfg = cfg.with_values({k: yaml.safe_load(v) for k, v in (kv.split("=", 1) for kv in args.set)})
    from flows.training import training_pipeline

    with RssSampler() as rss:
        started = time.time()
        state = training_pipeline(cfg, return_state=True)
        ended = time.time()
    if not state.is_completed():
        raise SystemExit(f"the flow did not complete: {state.message}")
    intervals = sorted(task_intervals(state.state_details.flow_run_id), key=lambda t: t[1])
    stages: dict[str, dict[str, float]] = {s: {"seconds": 0.0, "peak_rss_mb": 0.0} for s in STAGES}
    tasks: dict[str, dict[str, float]] = {}
    for name, start, end in intervals:
        peak = rss.peak_mb(start, end)
        tasks[task_label(name)] = {"seconds": round(end - start, 2), "peak_rss_mb": peak,
                                   "start_rss_mb": rss.at_mb(start)}
        stage = stage_of(name)
        if stage:
            stages[stage]["seconds"] = round(stages[stage]["seconds"] + end - start, 2)
            stages[stage]["peak_rss_mb"] = max(stages[stage]["peak_rss_mb"], peak)
    summary = state.result()
    return {
        "stages": stages,
        "tasks": tasks,
        # test PR-AUC per fold and model, and the final model's: a run's speed is judged with its scores
        "pr_auc": {model: [round(f["metrics"][model]["pr_auc"], 4) for f in summary["folds"]]
                   for model in summary["folds"][0]["metrics"]},
        "final_pr_auc": round((summary["final_model"].get("evaluation") or {}).get("pr_auc", float("nan")), 4),
        "seconds": round(ended - started, 1),
        "overhead": overhead(intervals, started, ended),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "input_mb": round(path.stat().st_size / 2**20, 1),
        **{k: v for k, v in vars(args).items() if k != "keep"},
    }


def covered(spans: list[tuple[float, float]]) -> float:
    """Seconds of the union of (start, end) spans: tasks that ran side by side count once."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def overhead(intervals: list[tuple[str, float, float]], started: float, ended: float) -> dict[str, float]:
    """Wall seconds of the flow outside the model work (training, evaluation, baselines, interpretation).

    Overhead is everything else: start-up of the flow and its task runner, the contract, windowing, MLflow
    logging, registration and the gate, and the time between tasks. Shares are of the flow's wall seconds.
    """
    model = [(s, e) for name, s, e in intervals if stage_of(name) in ("training", "evaluation")]
    wall = ended - started
    model_s = covered(model)
    logging_s = covered([(s, e) for name, s, e in intervals if stage_of(name) == "mlflow_logging"])
    first = min((s for _, s, _ in intervals), default=ended)
    return {"wall_seconds": round(wall, 1), "model_seconds": round(model_s, 1),
            "overhead_seconds": round(wall - model_s, 1), "overhead_share": round((wall - model_s) / wall, 3),
            "mlflow_logging_seconds": round(logging_s, 1), "startup_seconds": round(first - started, 1)}


def synthetic_config(args: argparse.Namespace, home: Path):
    """The synthetic table written as Parquet under ``home`` and the flow's config for it."""
    table = synthetic_table(args.rows, args.features, args.window, args.entities, args.rate)
    path = home / "telemetry.parquet"
    table.to_parquet(path, index=False)
    del table
    from lstm_pipeline.execution import release_memory

    release_memory()  # Arrow's pool kept the table's conversion: not the flow's memory, so not under its first task
    from lstm_core.config import load_config

    cfg = load_config(None, {
        "data.path": str(path), "data.time_col": "step", "data.entity_col": "machine", "data.label_col": "label",
        "window.length": args.window, "split.folds": args.folds, "resample.strategy": args.strategy,
        "model.hidden": args.hidden, "model.layers": args.layers, "train.batch_size": args.batch,
        "train.epochs": args.epochs, "train.patience": args.epochs, "train.device": "cpu",
        "evaluate.baselines": args.baselines.split(","), "register.experiment": "pipeline-benchmark",
        "data.max_file_mb": 1e6,
    })
    return cfg, path


def main(argv: list[str] | None = None) -> None:
    print(json.dumps(run(parse(argv))))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
