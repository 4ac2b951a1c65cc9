"""Where the embedded pipeline keeps its state, read from the environment when asked, never at import.

One home folder (``LSTM_PIPELINE_HOME``, default ``./.lstm_pipeline``) holds the MLflow SQLite store and its
artifacts, the content-addressed workspace and Prefect's database and results. ``MLFLOW_TRACKING_URI`` and
``PREFECT_API_URL`` point the same pipeline at servers instead.
"""
from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "LSTM_PIPELINE_HOME"


def home() -> Path:
    """The home folder, made absolute (created by ``prepare_home``)."""
    return Path(os.environ.get(HOME_ENV, ".lstm_pipeline")).expanduser().resolve()


def embedded_tracking_uri() -> str:
    return f"sqlite:///{home() / 'mlflow.db'}"


def tracking_uri() -> str:
    """MLflow's store: the user's server when ``MLFLOW_TRACKING_URI`` is set, else SQLite under home."""
    return os.environ.get("MLFLOW_TRACKING_URI") or embedded_tracking_uri()


def is_embedded() -> bool:
    """True when tracking into the SQLite store under home (MLflow itself may have exported its URI)."""
    return tracking_uri() == embedded_tracking_uri()


def artifact_location() -> str | None:
    """Artifacts under home for the embedded store; a server decides for itself."""
    return (home() / "mlartifacts").as_uri() if is_embedded() else None


def workspace_dir() -> Path:
    return home() / "workspace"


def prepare_home() -> Path:
    """Create the home folder and point Prefect's embedded state into it (before prefect is imported).

    Prefect stays on its ephemeral API unless ``PREFECT_API_URL`` is set; its database then lives in
    ``<home>/prefect`` so ``prefect server start`` with the same ``PREFECT_HOME`` shows every run.
    """
    root = home()
    root.mkdir(parents=True, exist_ok=True)
    if not os.environ.get("PREFECT_API_URL"):
        os.environ.setdefault("PREFECT_HOME", str(root / "prefect"))
    os.environ.setdefault("PREFECT_LOCAL_STORAGE_PATH", str(root / "prefect" / "storage"))
    # The embedded server phones home by default and its heartbeat races the SQLite file at start-up.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    return root
