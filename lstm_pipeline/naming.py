"""Run names a person can tell apart, and the links between a Prefect flow run and its MLflow run.

A name typed into the dashboard's form (or given with ``--run-name``) is kept. A run that arrives with
Prefect's generated name (two random words, e.g. 'bronze-otter': every scheduled run, and every run started
without a name) is renamed to what differs between runs: the file, the window, the strategy, and the minute the
run was due (its cron tick for a scheduled run), e.g. 'telemetry-w24-none-1130-0200'. The MLflow run takes the
same name, so both UIs list the same words.
"""
from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lstm_pipeline import settings

STAMP = "%m%d-%H%M"  # month, day, hour and minute in UTC: short, and sorts within a year
MLFLOW_UI_ENV = "LSTM_PIPELINE_MLFLOW_UI"


@functools.lru_cache(maxsize=1)
def _generated_words() -> frozenset[str]:
    """Every word Prefect's name generator (coolname) can draw."""
    import coolname

    words: set[str] = set()
    for path in (Path(coolname.__file__).parent / "data").glob("*.txt"):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                words.update(re.findall(r"[a-z]+", line.lower()))
    return frozenset(words)


def is_generated(name: str | None) -> bool:
    """True for a name Prefect made up ('bronze-otter'), False for one a person gave."""
    if not name:
        return True
    parts = name.split("-")
    return len(parts) in (2, 3) and all(p and p in _generated_words() for p in parts)


def stamp(when: datetime | None = None) -> str:
    """The UTC minute a run was due, as it appears at the end of a derived name."""
    when = when or datetime.now(timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime(STAMP)


def keep_given_name(derive: Callable[[dict[str, Any]], str]) -> Callable[[], str]:
    """A ``flow_run_name`` callable: the run's own name when a person gave it, else ``derive(parameters)``
    followed by the minute the run was due."""

    def name() -> str:
        from prefect.runtime import flow_run

        current = flow_run.get_name()
        if not is_generated(current):
            return current
        return f"{derive(flow_run.get_parameters())}-{stamp(flow_run.get_scheduled_start_time())}"

    name.__name__ = f"keep_given_name_{derive.__name__}"
    return name


def current_flow_run() -> dict[str, str]:
    """The flow run this code runs in: its id, name and dashboard URL (empty outside a flow run)."""
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    if not run_id:
        return {}
    out = {"prefect.flow_run_id": str(run_id), "prefect.flow_run_name": flow_run.get_name() or ""}
    url = prefect_ui_url()
    if url:
        out["prefect.flow_run_url"] = f"{url}/runs/flow-run/{run_id}"
    return out


def prefect_ui_url() -> str | None:
    """The Prefect dashboard that shows these runs, when there is one to link (a server, not the ephemeral API)."""
    from prefect.settings import PREFECT_UI_URL

    url = PREFECT_UI_URL.value()  # Prefect derives it from PREFECT_API_URL; unset on the ephemeral API
    return url.rstrip("/") if url else None


def mlflow_ui_url() -> str:
    """Where a person opens MLflow: ``LSTM_PIPELINE_MLFLOW_UI``, else the tracking server, else the address
    ``mlflow ui`` serves the embedded store at."""
    explicit = os.environ.get(MLFLOW_UI_ENV)
    if explicit:
        return explicit.rstrip("/")
    uri = settings.tracking_uri()
    if uri.startswith(("http://", "https://")):
        return uri.rstrip("/")
    return "http://127.0.0.1:5000"


# MLflow 3's UI opens an experiment in its GenAI view unless the link names the machine-learning workflow:
# the experiment's kind tag alone does not win over the UI's remembered (default GenAI) choice.
ML_VIEW = "workflowType=machine_learning"


def mlflow_run_url(experiment_id: str, run_id: str) -> str:
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}?{ML_VIEW}"


def mlflow_experiment_url(experiment_id: str) -> str:
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs?{ML_VIEW}"


def mlflow_version_url(name: str, version: int | str) -> str:
    return f"{mlflow_ui_url()}/#/models/{name}/versions/{version}"
