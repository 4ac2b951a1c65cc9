"""Shared fixtures: a synthetic telemetry file, an isolated pipeline home, one Prefect harness per session."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest


def make_telemetry(machines: int = 2, rows: int = 160, seed: int = 0) -> pd.DataFrame:
    """Hourly rows per machine; each failure is preceded by a 4-hour rise in 'temp' (the planted pattern)."""
    rng = np.random.default_rng(seed)
    frames = []
    for m in range(machines):
        temp, vib = rng.normal(size=rows), rng.normal(size=rows)
        failure = np.zeros(rows, np.int64)
        for t in rng.choice(np.arange(12, rows - 4), size=rows // 25, replace=False):
            failure[t] = 1
            temp[t - 4:t] += 3.0
        frames.append(pd.DataFrame({
            "timestamp": pd.date_range("2024-01-01", periods=rows, freq="h"), "machine": f"m{m}",
            "temp": temp, "vibration": vib, "failure": failure,
        }))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def telemetry_csv(tmp_path: Path) -> Path:
    path = tmp_path / "telemetry.csv"
    make_telemetry().to_csv(path, index=False)
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty pipeline home with the embedded MLflow store (never a user's server)."""
    root = tmp_path / "home"
    monkeypatch.setenv("LSTM_PIPELINE_HOME", str(root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return root


@pytest.fixture(scope="session")
def prefect_harness():
    """One ephemeral Prefect API for the whole session (starting one costs seconds)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
