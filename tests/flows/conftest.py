"""Real MLflow and Prefect servers on fresh PostgreSQL databases, for the production-side tests."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

PG_DSN = os.environ.get("LSTM_PIPELINE_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _admin(sql: str) -> None:
    import psycopg2

    conn = psycopg2.connect(f"{PG_DSN}/postgres", connect_timeout=3)
    conn.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    try:
        conn.cursor().execute(sql)
    finally:
        conn.close()


@pytest.fixture(scope="session")
def mlflow_pg_server(tmp_path_factory):
    """``mlflow server`` backed by its own Postgres database; yields the tracking URI."""
    db = f"lstm_pipeline_test_{uuid.uuid4().hex[:8]}"
    try:
        _admin(f"CREATE DATABASE {db}")
    except Exception as exc:  # no Postgres here: the SQLite variants still run
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}: {exc}")
    port, artifacts = _free_port(), tmp_path_factory.mktemp("pg-artifacts")
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; the dev extra installs psycopg2.
    store = f"{PG_DSN.replace('postgresql://', 'postgresql+psycopg2://')}/{db}"
    log = open(tmp_path_factory.mktemp("pg-log") / "mlflow.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", store, "--artifacts-destination", artifacts.as_uri(),
         "--workers", "2"],
        stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(f"{uri}/health", server, log.name, "mlflow server")
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        _admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _wait_healthy(url: str, server: subprocess.Popen, log_name: str, what: str) -> None:
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{what} did not start; see {log_name}") from None
            time.sleep(0.5)


def new_pg_database(prefix: str) -> str:
    """A fresh, empty Postgres database's name (skips the test when Postgres is not reachable)."""
    db = f"{prefix}_{uuid.uuid4().hex[:8]}"
    try:
        _admin(f"CREATE DATABASE {db}")
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {PG_DSN}: {exc}")
    return db


def drop_pg_database(db: str) -> None:
    _admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def prefect_pg_url(db: str) -> str:
    return f"{PG_DSN.replace('postgresql://', 'postgresql+asyncpg://')}/{db}"


@contextlib.contextmanager
def prefect_server(root, database_url: str, **env: str):
    """``prefect server start`` on ``database_url`` with its state under ``root``; yields the API URL.

    ``env`` adds Prefect settings, such as a short scheduler loop."""
    port = _free_port()
    full = {**os.environ, "PREFECT_HOME": str(root), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false", "PREFECT_API_DATABASE_CONNECTION_URL": database_url, **env}
    full.pop("PREFECT_API_URL", None)
    log = open(root / "server.log", "w")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=full, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(f"{api}/health", server, log.name, "prefect server")
        yield api
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def prefect_pg_server(tmp_path_factory):
    """``prefect server start`` on its own Postgres database (asyncpg), as the compose stack runs it; yields
    the API URL."""
    db = new_pg_database("lstm_pipeline_prefect")
    try:
        with prefect_server(tmp_path_factory.mktemp("prefect-pg"), prefect_pg_url(db)) as api:
            yield api
    finally:
        drop_pg_database(db)


def settled_task_runs(flow_run_id, timeout: float = 60.0) -> list:
    """This flow run's task runs once each has its final state: task states reach the API through events,
    so right after the flow returns a busy machine may still show a task run without one."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:  # this flow run's tasks only: the session's API holds many
        while True:
            runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
            if all(r.state is not None and r.state.is_final() for r in runs) or time.monotonic() > deadline:
                return runs
            time.sleep(0.5)


@pytest.fixture(params=["sqlite", "postgres-server"])
def tracking_store(request, home, monkeypatch) -> str:
    """Run a test against the embedded SQLite store and against an MLflow server on Postgres."""
    if request.param == "postgres-server":
        monkeypatch.setenv("MLFLOW_TRACKING_URI", request.getfixturevalue("mlflow_pg_server"))
    from lstm_pipeline import settings

    return settings.tracking_uri()
