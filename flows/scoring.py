"""Batch scoring: the champion (or any registered model) scores every complete window of a file."""
from __future__ import annotations

from pathlib import Path

from prefect import flow

from lstm_core.config import ScoreConfig
from lstm_pipeline import naming
from tasks.scoring import (
    load_scoring_data,
    log_scores,
    resolve_model,
    score_windows,
    scoring_summary,
    start_scoring_run,
    validate_scoring_data,
)
from tasks.tracking import finish_run


def _derived_name(parameters: dict) -> str:
    """'<file>-<model>@<alias>', e.g. 'telemetry-telemetry-lstm@champion'."""
    raw = parameters["params"]
    params = raw if isinstance(raw, ScoreConfig) else ScoreConfig.model_validate(raw)
    stem = Path(params.data).stem if params.data else "no-data"
    return f"{stem}-{params.model_uri or f'{params.model_name}@{params.alias}'}".replace("models:/", "")


@flow(name="batch_scoring", flow_run_name=naming.keep_given_name(_derived_name), log_prints=True)
def batch_scoring(params: ScoreConfig) -> dict:
    """Score a file with a registered model under the data contract it was trained with; log the run."""
    model = resolve_model(params)
    loaded = load_scoring_data(params, model)
    run_id = start_scoring_run(params, model, loaded)
    try:
        validate_scoring_data(loaded, run_id, model)
        scored = score_windows(loaded, model, params)
        metrics = log_scores(run_id, params, loaded, scored)
        result = scoring_summary(run_id, model, loaded, scored, metrics)
    except BaseException:
        finish_run(run_id, "FAILED")
        raise
    finish_run(run_id, "FINISHED")
    return result
