"""Where the embedded pipeline keeps its state, read from the environment when asked, never at import.

One home folder (``LSTM_PIPELINE_HOME``, default ``./.lstm_pipeline``) holds the MLflow SQLite store and its
artifacts, the content-addressed workspace and Prefect's database and results. ``MLFLOW_TRACKING_URI`` and
``PREFECT_API_URL`` point the same pipeline at servers instead.
"""
from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "LSTM_PIPELINE_HOME"
RETRY_SCALE_ENV = "LSTM_PIPELINE_RETRY_DELAY_SCALE"


def retry_delay_scale() -> float:
    """Factor on every task retry delay (``LSTM_PIPELINE_RETRY_DELAY_SCALE``, default 1; 0 retries at once)."""
    raw = os.environ.get(RETRY_SCALE_ENV, "1")
    try:
        scale = float(raw)
    except ValueError:
        raise ValueError(f"{RETRY_SCALE_ENV}={raw!r}: expected a number such as 0.5") from None
    if scale < 0:
        raise ValueError(f"{RETRY_SCALE_ENV}={raw!r}: expected a number ≥ 0")
    return scale


class RetryDelays(list):
    """Retry delays in seconds, scaled by ``retry_delay_scale()`` when Prefect reads one at retry time.

    Tasks are declared at import; the scale is read when a retry is due, so a test or an operator can
    shorten the backoff through the environment without re-importing anything.
    """

    def __getitem__(self, i):
        return super().__getitem__(i) * retry_delay_scale()


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
    # A first run migrates a new SQLite database; on a busy machine that outlasts Prefect's 20 s default.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # MLflow retries a refused connection 7 times with backoff up to 2 minutes, under every task retry;
    # the I/O tasks retry already, so a tracking server that is down is reported in about a minute, not ten.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    # a download bar per artifact would fill flow logs and the serve console; the flow logs what it loads
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return root
