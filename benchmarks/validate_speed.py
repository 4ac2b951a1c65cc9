"""Time of the data contract on 1M rows × 32 features: the GX suite with every helper column, no Data Docs.

The table is what a user's file becomes after reading: 100 machines of 10 000 hourly rows each (datetimes), 32
float32 features, a 0/1 event at 2%. Each run validates the same frame; the first run also pays the import of
great_expectations, so the median of three is reported.

    python -m benchmarks.validate_speed
    python -m benchmarks.validate_speed --text-times        # timestamps as text, as read from a CSV
    python -m benchmarks.validate_speed --rows 200000 --features 8 --runs 5

Prints one JSON line.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import pandas as pd

from benchmarks.synthetic import rows_and_labels
from lstm_core.config import load_config
from lstm_core.data import DataSpec


def telemetry(rows: int, features: int, entities: int) -> tuple[pd.DataFrame, DataSpec]:
    x, y = rows_and_labels(rows, features, window=24, rate=0.02)
    per = rows // entities
    names = [f"f{i:02d}" for i in range(features)]
    frame = pd.DataFrame(x, columns=names)
    frame.insert(0, "machine", np.repeat([f"m{k:03d}" for k in range(entities)], per)[:rows])
    frame.insert(0, "timestamp", pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(rows) % per, unit="h"))
    frame["failure"] = y.astype(np.int64)
    return frame, DataSpec("timestamp", "machine", tuple(names), "failure", "event", 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--entities", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--text-times", action="store_true", help="ISO timestamps as text, to be parsed")
    args = parser.parse_args()
    from lstm_pipeline.contract import run_contract

    frame, spec = telemetry(args.rows, args.features, args.entities)
    if args.text_times:
        frame["timestamp"] = frame["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%S")
    config = load_config(None, {"data.entity_col": "machine", "data.event_col": "failure", "data.horizon": 6,
                                "window.length": 24, "window.max_gap": "2h"})
    seconds, checks, holds = [], 0, False
    for _ in range(args.runs):
        start = time.perf_counter()
        report = run_contract(frame, spec, config)
        seconds.append(time.perf_counter() - start)
        checks, holds = len(report.checks), report.success
    print(json.dumps({"benchmark": "validate_speed", "rows": args.rows, "features": args.features,
                      "entities": args.entities, "text_times": args.text_times, "checks": checks, "contract_holds": holds,
                      "median_s": round(statistics.median(seconds), 2), "runs_s": [round(s, 2) for s in seconds],
                      "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
