"""Deployments of the training and scoring flows, served from this process with Prefect's ``serve``.

``build_deployments`` is pure: it returns the deployments (names, schedules, default parameters, the
parameter form's schema) without touching an API, so they can be inspected and tested. ``serve_forever``
registers them with the Prefect server at ``PREFECT_API_URL`` and runs their flow runs here until stopped.
For the worker-based set-up on the compose stack, ``prefect.yaml`` declares the same two deployments.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lstm_core.config import PipelineConfig, ScoreConfig

if TYPE_CHECKING:
    from prefect.deployments.runner import RunnerDeployment

DEPLOYMENT = "nightly"  # training_pipeline/nightly and batch_scoring/nightly
TAGS = ["lstm-pipeline"]


class ServeError(ValueError):
    """Deployments that cannot be served as asked (no Prefect server, a bad cron or time zone)."""


def build_deployments(config: PipelineConfig, score: ScoreConfig | None = None, cron: str = "0 2 * * *",
                      score_cron: str = "0 4 * * *", timezone: str = "UTC",
                      schedule: bool = True) -> list[RunnerDeployment]:
    """The training and the scoring deployment, with ``config`` and ``score`` as their default parameters.

    A flow whose data file is not set gets no schedule (it would fail every night); it can still be run
    from the dashboard, where the form asks for the file. The scoring deployment scores with the model the
    training config registers unless ``score`` names another.
    """
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron

    from flows.scoring import batch_scoring
    from flows.training import training_pipeline

    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ServeError(f"time zone '{timezone}' is not an IANA name such as 'Europe/Berlin' or 'UTC'") from exc
    score = score or ScoreConfig()
    if score.model_name is None and score.model_uri is None and (config.data.path or config.register.model_name):
        score = score.model_copy(update={"model_name": config.resolved_model_name()})

    def schedules(expression: str, data: str | None) -> list:
        if not (schedule and data):
            return []
        try:
            return [Cron(expression, timezone=timezone)]
        except ValueError as exc:
            raise ServeError(f"schedule '{expression}' ({timezone}): {exc}") from exc

    common = {"tags": TAGS, "entrypoint_type": EntrypointType.MODULE_PATH}
    training = training_pipeline.to_deployment(
        DEPLOYMENT, schedules=schedules(cron, config.data.path), parameters={"config": config.model_dump(mode="json")},
        # a tick (or a dashboard run) while the last training run still runs is cancelled, never merged into it
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        description="Walk-forward evaluation of the LSTM against baselines, refit, register as challenger, gate.",
        **common)
    scoring = batch_scoring.to_deployment(
        DEPLOYMENT, schedules=schedules(score_cron, score.data), parameters={"params": score.model_dump(mode="json")},
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.ENQUEUE),
        description="Score a file with the registered champion under its data contract; predictions to Parquet.",
        **common)
    _require(training, "DataConfig", "path")
    _require(scoring, "ScoreConfig", "data")
    return [training, scoring]


def _require(deployment: RunnerDeployment, section: str, field: str) -> None:
    """Mark ``field`` of the config section ``section`` required in the deployment's parameter schema, so the
    dashboard's form asks for it instead of labelling it '(Optional)': the config tree leaves it unset (a YAML
    file or a flag may give it), but a run without it cannot start."""
    definition = deployment._parameter_openapi_schema.definitions[section]
    prop = definition["properties"][field]
    definition["properties"][field] = {"type": "string", "minLength": 1, "title": prop.get("title", field),
                                       "description": prop.get("description", "")}
    definition["required"] = sorted({*definition.get("required", []), field})


def serve_forever(deployments: list[RunnerDeployment], limit: int | None = None) -> None:
    """Register the deployments and run their flow runs in this process until interrupted."""
    from lstm_pipeline import settings

    settings.prepare_home()
    if not os.environ.get("PREFECT_API_URL"):
        raise ServeError("serve needs a Prefect server to hold the schedules and the dashboard: run "
                         "'prefect server start' and set PREFECT_API_URL=http://127.0.0.1:4200/api")
    from prefect import serve

    from lstm_pipeline import tracking

    # Create the embedded MLflow store now: a training and a scoring run due at the same minute would otherwise
    # both migrate a new SQLite file at once, and one fails ("duplicate column name").
    tracking.client().search_experiments(max_results=1)
    serve(*deployments, limit=limit)
