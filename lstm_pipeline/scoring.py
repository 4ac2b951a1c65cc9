"""The registry side of batch scoring: which model version an URI means, the scorer and its training config.

A scoring run pins the alias it was asked for (``models:/NAME@champion``) to the version it resolved to, so
that a promotion during the run cannot mix two models in one predictions file.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_core.config import PipelineConfig
from lstm_core.data import DataError, DataSpec
from lstm_pipeline import settings, tracking
from lstm_pipeline.safe_files import atomic_write

_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
CONFIG_FILE = "pipeline_config.json"


def resolve(model_uri: str) -> dict[str, Any]:
    """Name, version and a pinned URI for a registry URI; a ``runs:/`` URI has no name or version."""
    from mlflow.exceptions import MlflowException

    client = tracking.client()
    found = _ALIAS.match(model_uri) or _VERSION.match(model_uri)
    if not found:
        return {"uri": model_uri, "requested": model_uri, "name": None, "version": None, "run_id": None}
    name = found["name"]
    try:
        if "alias" in found.groupdict():
            mv = client.get_model_version_by_alias(name, found["alias"])
        else:
            mv = client.get_model_version(name, found["version"])
    except MlflowException as exc:
        raise DataError(f"no model '{model_uri}' in {settings.tracking_uri()}: {exc.message}") from exc
    return {"uri": f"models:/{name}/{mv.version}", "requested": model_uri, "name": name,
            "version": int(mv.version), "run_id": mv.run_id}


def load(model_uri: str) -> tuple[Any, PipelineConfig]:
    """The scorer and the config of the run that trained it, rebuilt from safetensors weights and JSON.

    Only the model's ``data`` folder is downloaded and read (``registry_model.load``): a version logged in the
    old pickled format is refused in one line, unread.
    """
    import mlflow.artifacts

    from lstm_pipeline import registry_model

    tracking.client()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        except Exception as exc:  # MLflow raises several types for a missing model
            if tracking.unreachable(exc):
                raise tracking.unreachable(exc) from exc
            raise DataError(f"cannot load model '{model_uri}' from {settings.tracking_uri()}: {exc}") from exc
        try:
            data = registry_model.find_data(local)
            scorer = registry_model.load(data)
        except registry_model.OldModelFormat as exc:
            raise DataError(f"model '{model_uri}' is in the old pickled format, which is no longer loaded "
                            f"(unpickling can run code): retrain it to register a version in the safe "
                            f"format") from exc
        saved = data / CONFIG_FILE
        config = (PipelineConfig.model_validate(json.loads(saved.read_text(encoding="utf-8")))
                  if saved.is_file() else PipelineConfig())
    return scorer, config


def scoring_spec(scorer: Any, config: PipelineConfig) -> DataSpec:
    """The columns a file to score must have: the model's time, entity and features (no target)."""
    spec = scorer.spec
    return DataSpec(spec["time_col"], spec["entity_col"], tuple(spec["features"]), config.data.target_col,
                    spec["mode"], 0)


def default_output(data: str, model: dict[str, Any]) -> Path:
    """predictions/<data file>-<model>-v<version>.parquet under the pipeline home."""
    label = f"{model['name']}-v{model['version']}" if model["name"] else "model"
    return settings.home() / "predictions" / f"{Path(data).stem}-{label}.parquet"


def with_model(frame: pd.DataFrame, model: dict[str, Any]) -> pd.DataFrame:
    """The predictions with the model that made them: its registered name and version (null for a run URI)."""
    return frame.assign(model=model["name"] or model["uri"],
                        model_version=pd.array([model["version"]] * len(frame), dtype="Int64"))


def write(frame: pd.DataFrame, out: str | Path) -> Path:
    """Parquet, or CSV for a .csv path; the folder is created, the file replaced atomically."""
    path = Path(out)
    if path.suffix.lower() == ".csv":
        return atomic_write(path, lambda fh: frame.to_csv(fh, index=False))
    return atomic_write(path, lambda fh: frame.to_parquet(fh, index=False))
