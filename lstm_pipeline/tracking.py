"""MLflow calls the tasks make: runs, nested fold runs, artifacts, model logging and registration.

All calls go through an explicit ``MlflowClient`` bound to ``settings.tracking_uri()``, so a task running
on any thread or worker records into the right store and run.
"""
from __future__ import annotations

import functools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import mlflow.data
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from lstm_pipeline import naming, settings

CHALLENGER = "challenger"
# Without it MLflow 3's UI opens the experiment in its GenAI (traces) view instead of the runs table.
MODEL_TRAINING_KIND = {"mlflow.experimentKind": "custom_model_development"}


class TrackingUnavailable(ConnectionError):
    """The MLflow tracking server cannot be reached: transient, so the I/O tasks retry it; one line for a user."""


def unreachable(exc: BaseException) -> TrackingUnavailable | None:
    """A ``TrackingUnavailable`` naming the store when ``exc``, or what it arose from, is a failed connection.

    MLflow wraps the HTTP error in an ``MlflowException`` whose message runs to several lines of urllib3 repr.
    """
    import requests

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, TrackingUnavailable):
            return seen
        if isinstance(seen, (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                             requests.exceptions.RetryError)):
            reason = ("timed out" if isinstance(seen, requests.exceptions.Timeout)
                      else "connection refused" if "refused" in str(seen).lower() else "no connection")
            return TrackingUnavailable(f"MLflow tracking server {settings.tracking_uri()} is unreachable ({reason}); "
                                       "start it, or point MLFLOW_TRACKING_URI at a running one")
        seen = seen.__cause__ or seen.__context__
    return None


def _reachable(fn):
    """Turn a failed connection to the tracking server into one ``TrackingUnavailable``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TrackingUnavailable:
            raise
        except Exception as exc:
            down = unreachable(exc)
            if down is None:
                raise
            raise down from exc

    return wrapper


def client() -> MlflowClient:
    """A client bound to the configured store (the embedded one keeps its artifacts under home)."""
    uri = settings.tracking_uri()
    if settings.is_embedded():
        settings.home().mkdir(parents=True, exist_ok=True)
        # A SQLite store roots its Default experiment at ./mlruns in the working directory unless this
        # (MLflow's own server setting) says otherwise; the user's folder stays clean.
        os.environ["_MLFLOW_SERVER_ARTIFACT_ROOT"] = settings.artifact_location()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@_reachable
def experiment_id(name: str) -> str:
    """The experiment's id, created when missing (the embedded store puts it under home/mlartifacts/<id>)."""
    c = client()
    found = c.get_experiment_by_name(name)
    if found is None:
        try:
            found = c.get_experiment(c.create_experiment(name, tags=MODEL_TRAINING_KIND))
        except MlflowException:  # created concurrently by another run
            found = c.get_experiment_by_name(name)
    if found.tags.get("mlflow.experimentKind") is None:
        c.set_experiment_tag(found.experiment_id, *next(iter(MODEL_TRAINING_KIND.items())))
    return found.experiment_id


def _log_batch(run_id: str, params: dict[str, Any] | None = None, metrics: list[Metric] | None = None,
               tags: dict[str, str] | None = None) -> None:
    c = client()
    items = [Param(k, "" if v is None else str(v)) for k, v in (params or {}).items()]
    for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        c.log_batch(run_id, params=items[start:start + 100])
    metrics = metrics or []
    for start in range(0, len(metrics), 1000):
        c.log_batch(run_id, metrics=metrics[start:start + 1000])
    if tags:
        c.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


def metric_list(values: dict[str, float], step: int = 0) -> list[Metric]:
    """Finite values as MLflow metrics (NaN marks an undefined metric and is left out)."""
    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in values.items() if v is not None and np.isfinite(v)]


@_reachable
def start_run(experiment: str, run_name: str, params: dict[str, Any], tags: dict[str, str],
              parent_run_id: str | None = None, start_time: int | None = None) -> str:
    """Create a run (nested when ``parent_run_id`` is given), log its params and tags, return its id.

    Inside a Prefect flow run a top-level run takes the flow run's name and links it (``prefect_link``).
    ``start_time`` (ms since the epoch) dates a run opened after the work it records was done.
    """
    all_tags = {"mlflow.source.name": "lstm-pipeline", "mlflow.source.type": "JOB", **tags}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    else:
        link = prefect_link()
        run_name = link.get("prefect.flow_run_name") or run_name
        all_tags.update(link)
    run = client().create_run(experiment_id(experiment), run_name=run_name, tags=all_tags, start_time=start_time)
    _log_batch(run.info.run_id, params=params)
    return run.info.run_id


def prefect_link() -> dict[str, str]:
    """Tags that point an MLflow run at the Prefect flow run it belongs to; its description links the dashboard."""
    link = naming.current_flow_run()
    if link.get("prefect.flow_run_url"):
        link["mlflow.note.content"] = (f"Prefect flow run [{link['prefect.flow_run_name']}]"
                                       f"({link['prefect.flow_run_url']})")
    elif link:
        link["mlflow.note.content"] = f"Prefect flow run {link['prefect.flow_run_name']} ({link['prefect.flow_run_id']})"
    return link


SCHEMA_SAMPLE_ROWS = 1_000


def dataset_source(path: str):
    """The MLflow dataset source of a data file. A local path is named a local source outright: resolved from a
    string, MLflow finds two registered readers for it and warns that the source is ambiguous."""
    from urllib.parse import urlparse

    from mlflow.data.dataset_source_registry import get_dataset_source_from_json, resolve_dataset_source

    if urlparse(str(path)).scheme not in ("", "file"):
        return resolve_dataset_source(str(path))
    uri = Path(str(path).removeprefix("file://")).resolve().as_uri()
    return get_dataset_source_from_json(json.dumps({"uri": uri}), "local")


@_reachable
def log_dataset(run_id: str, df, source: str, name: str, target: str, digest: str) -> None:
    """Show the input table in the run's Dataset column: its schema, source path, content digest and size.

    MLflow infers a schema by visiting every cell in Python (hours on 10M rows), so the schema comes from the
    first ``SCHEMA_SAMPLE_ROWS`` rows; the digest (the pipeline's own hash of the whole file) and the profile
    (rows and cells) describe the whole table."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    head = df.head(SCHEMA_SAMPLE_ROWS)
    # The pipeline reads every numeric column as floating point (a missing value would make it one anyway), so
    # the schema says so; MLflow warns about integer columns for exactly that reason.
    head = head.astype({c: "float64" for c in head.columns if pd.api.types.is_integer_dtype(head[c])})
    head = mlflow.data.from_pandas(head, source=dataset_source(source), targets=target, name=name,
                                   digest=digest)._to_mlflow_entity()
    profile = json.dumps({"num_rows": int(len(df)), "num_elements": int(df.size)})
    entity = Dataset(name=head.name, digest=head.digest, source_type=head.source_type, source=head.source,
                     schema=head.schema, profile=profile)
    client().log_inputs(run_id, datasets=[DatasetInput(entity, tags=[InputTag("mlflow.data.context", "training")])])


@_reachable
def log_params(run_id: str, params: dict[str, Any]) -> None:
    _log_batch(run_id, params=params)


@_reachable
def set_tags(run_id: str, tags: dict[str, str]) -> None:
    _log_batch(run_id, tags=tags)


@_reachable
def log_metrics(run_id: str, values: dict[str, float], step: int = 0) -> None:
    _log_batch(run_id, metrics=metric_list(values, step))


@_reachable
def log_curves(run_id: str, history: list[dict[str, float]], key=lambda name: name) -> None:
    """Per-epoch curves, one metric point per epoch (the row's 'epoch'); ``key`` names each metric."""
    points = [m for row in history for m in metric_list({key(k): v for k, v in row.items() if k != "epoch"},
                                                        int(row["epoch"]))]
    _log_batch(run_id, metrics=points)


@_reachable
def log_file(run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
    client().log_artifact(run_id, str(path), artifact_path)


@_reachable
def log_folder(run_id: str, folder: str | Path, artifact_path: str) -> None:
    """Log every file under ``folder`` (a Data Docs site, say) below ``artifact_path``."""
    client().log_artifacts(run_id, str(folder), artifact_path)


@_reachable
def log_json(run_id: str, payload: Any, name: str) -> None:
    """Log ``payload`` as a JSON artifact; ``name`` may hold a folder ('validation/result.json')."""
    folder, _, filename = name.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / filename
        target.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
        log_file(run_id, target, folder or None)


@_reachable
def finish_run(run_id: str, status: str = "FINISHED", end_time: int | None = None) -> None:
    """Close a run; ``end_time`` (ms since the epoch) when the work it records ended earlier than now."""
    client().set_terminated(run_id, status, end_time=end_time)


def _requirements() -> list[str]:
    """What the scorer needs, pinned to this environment (local labels like '+cpu' dropped).

    Loading it also needs this project's ``lstm_pipeline.registry_model`` (the pyfunc loader) and ``lstm_core``
    (the network it rebuilds) importable.
    """
    from importlib.metadata import version

    names = ("torch", "numpy", "pandas", "scikit-learn", "imbalanced-learn", "pydantic", "pyyaml", "mlflow",
             "safetensors")
    return [f"{n}=={version(n).split('+')[0]}" for n in names]


@_reachable
def find_version(name: str, run_id: str):
    """The version this run already registered under ``name`` (a retried task must not add another)."""
    try:
        versions = client().search_model_versions(f"name='{name}' and run_id='{run_id}'")
    except MlflowException as exc:
        if unreachable(exc):
            raise
        return None
    return versions[0] if versions else None


@_reachable
def run_url(run_id: str) -> str:
    """The MLflow UI page of a run."""
    return naming.mlflow_run_url(client().get_run(run_id).info.experiment_id, run_id)


def version_description(run_id: str, tags: dict[str, str]) -> str:
    """Markdown for a registered version's page: links to the MLflow run and the Prefect flow run that made it."""
    run = client().get_run(run_id)
    lines = [f"Trained by MLflow run [{run.info.run_name}]({run_url(run_id)})."]
    if tags.get("prefect.flow_run_url"):
        lines.append(f"Prefect flow run [{tags.get('prefect.flow_run_name', '')}]({tags['prefect.flow_run_url']}).")
    elif tags.get("prefect.flow_run_id"):
        lines.append(f"Prefect flow run {tags.get('prefect.flow_run_name', '')} ({tags['prefect.flow_run_id']}).")
    return "\n\n".join(lines)


@_reachable
def log_and_register(run_id: str, scorer, example: np.ndarray, name: str | None,
                     version_tags: dict[str, str], config: dict[str, Any]) -> dict[str, Any]:
    """Log the scorer with signature, input example, its scoring spec and the run's config; register it
    under ``name`` as the challenger.

    The model is an MLflow pyfunc with ``loader_module=lstm_pipeline.registry_model``: weights as safetensors,
    spec and config as JSON, nothing pickled (``registry_model``)."""
    import mlflow.pyfunc
    from mlflow.models import infer_signature

    from lstm_pipeline import registry_model

    c = client()
    # A run killed after its version was created (before its tags and alias were set) finds that version again
    # and finishes its bookkeeping: it never registers a second one.
    existing = find_version(name, run_id) if name else None
    if existing is None:
        import torch

        with torch.inference_mode():
            output = scorer(torch.as_tensor(example)).numpy()
        signature = infer_signature(example, output)
        with tempfile.TemporaryDirectory() as tmp:
            data = registry_model.save(scorer, Path(tmp) / registry_model.DATA, config)
            # Not ``with mlflow.start_run(...)``: leaving it would mark the parent FINISHED while the flow still
            # runs, and a run killed after that could no longer be resumed (its rerun would register again).
            mlflow.start_run(run_id=run_id)
            try:
                info = mlflow.pyfunc.log_model(
                    name="model", loader_module=registry_model.__name__, data_path=str(data), signature=signature,
                    input_example=example, registered_model_name=name, pip_requirements=_requirements())
            finally:
                mlflow.end_run(status="RUNNING")  # the flow ends its run itself (finish_run)
        model_uri, version = info.model_uri, info.registered_model_version
    else:
        model_uri, version = existing.source, existing.version
    out: dict[str, Any] = {"model_uri": model_uri, "name": name, "version": None, "alias": None}
    if name:
        for key, value in version_tags.items():
            c.set_model_version_tag(name, str(version), key, value)
        c.update_model_version(name, str(version), description=version_description(run_id, version_tags))
        c.set_registered_model_alias(name, CHALLENGER, str(version))
        out.update(version=int(version), alias=CHALLENGER)
    return out
