"""The project's trainer against the tutorial-style loop, same shape, each in its own process.

    python -m benchmarks.compare_tutorial --rows 100000 --features 16 --window 48 --batch 256 --epochs 2 --repeat 3

Each implementation (tutorial, project, and ``bare``: the same step on batches already on the device, the
ceiling) runs ``--repeat`` times in a fresh process (so peak RSS is its own). The repeats are interleaved
(tutorial, project, bare, tutorial, ...) so that a machine slowing down or speeding up during the run does
not favour whichever went first. The medians, every run's windows/s, and the ratios project/tutorial and
project/bare are printed as one JSON line.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys

from benchmarks.train_throughput import parse


def _once(impl: str, argv: list[str]) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.train_throughput", *argv, "--impl", impl],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    argv = sys.argv[1:]
    repeat = 3
    if "--repeat" in argv:
        i = argv.index("--repeat")
        repeat = int(argv[i + 1])
        argv = argv[:i] + argv[i + 2:]
    parse([a for a in argv if a != "--impl"])  # validate the flags before spending minutes
    impls = ("tutorial", "project", "bare")
    runs: dict[str, list[dict]] = {impl: [] for impl in impls}
    for _ in range(repeat):
        for impl in impls:
            runs[impl].append(_once(impl, argv))
    med = {impl: {k: statistics.median(r[k] for r in rs) for k in ("windows_per_s", "peak_rss_mb", "seconds")}
           for impl, rs in runs.items()}
    print(json.dumps({
        "median": med,
        "speed_ratio": round(med["project"]["windows_per_s"] / med["tutorial"]["windows_per_s"], 3),
        "rss_ratio": round(med["project"]["peak_rss_mb"] / med["tutorial"]["peak_rss_mb"], 3),
        "limit_ratio": round(med["project"]["windows_per_s"] / med["bare"]["windows_per_s"], 3),
        "windows_per_s_each": {impl: [r["windows_per_s"] for r in rs] for impl, rs in runs.items()},
        "device": runs["project"][0]["device"], "repeat": repeat, "args": argv,
    }))


if __name__ == "__main__":
    main()
