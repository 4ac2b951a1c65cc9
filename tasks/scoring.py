"""Batch scoring stages: resolve the model, load and validate the file, score every window, record the run."""
from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from lstm_core.config import PipelineConfig, ScoreConfig
from lstm_core.data import DataError, apply_missing, fingerprint, read_table
from lstm_core.scoring import score_frame
from lstm_pipeline import artifacts, data_roots, scoring, tracking
from lstm_pipeline.contract import ContractError, run_contract
from lstm_pipeline.execution import releases_memory
from tasks.policy import COMPUTE_RETRY, IO_RETRY


@task(name="resolve-model", **IO_RETRY)
@releases_memory
def resolve_model(params: ScoreConfig) -> dict:
    """Pin the alias to its version, load the scorer and the config it was trained with."""
    model = scoring.resolve(params.resolved_model_uri())
    scorer, config = scoring.load(model["uri"])
    get_run_logger().info("scoring with %s (%s): window %d, features %s, threshold %.4f", model["uri"],
                          model["requested"], scorer.spec["window"], scorer.spec["features"], scorer.threshold)
    return {**model, "scorer_uri": artifacts.put_torch(scorer, "scorer"), "config": config.model_dump(mode="json"),
            "spec": dict(scorer.spec)}


def _scorer(model: dict):
    """The scorer resolve_model stored in the workspace."""
    return artifacts.get_torch(model["scorer_uri"])


@task(name="load-scoring-data", **IO_RETRY)
@releases_memory
def load_scoring_data(params: ScoreConfig, model: dict) -> dict:
    """Read the file with the training run's reader settings; refuse it when a column the model needs is absent."""
    if not params.data:
        raise DataError("no data to score: set data (a CSV or Parquet file)")
    config = PipelineConfig.model_validate(model["config"])
    df = read_table(data_roots.check(params.data, "data file"), sep=config.data.sep,
                    max_file_mb=config.data.max_file_mb)
    spec = scoring.scoring_spec(_scorer(model), config)
    absent = [c for c in spec.required[:-1] if c not in df.columns]
    if absent:
        raise DataError(f"{params.data}: column(s) {absent} needed by {model['uri']} are not in the file; "
                        f"it has {list(df.columns)}")
    return {"table_uri": artifacts.put_table(df[list(spec.required[:-1])]),
            "fingerprint": fingerprint(df, spec, target=False)}


@task(name="start-scoring-run", **IO_RETRY)
@releases_memory
def start_scoring_run(params: ScoreConfig, model: dict, loaded: dict) -> str:
    """Open the scoring run: model URI and version, input file and its fingerprint as params."""
    fp = loaded["fingerprint"]
    experiment = params.experiment or f"{model['name'] or 'model'}-scoring"
    run_params = {"model.uri": model["uri"], "model.requested": model["requested"], "model.name": model["name"],
                  "model.version": model["version"], "model.run_id": model["run_id"],
                  "model.threshold": model["spec"]["threshold"], "input.path": params.data,
                  "input.hash": fp["hash"], "input.rows": fp["rows"]}
    return tracking.start_run(experiment, f"{Path(params.data).stem}-{model['name'] or 'model'}", run_params,
                              {"pipeline": "batch_scoring", "data.hash": fp["hash"]})


@task(name="validate-scoring-data", **COMPUTE_RETRY)
@releases_memory
def validate_scoring_data(loaded: dict, run_id: str, model: dict) -> dict:
    """The training run's data contract on the feature, time and entity columns; stop the flow when it fails."""
    config = PipelineConfig.model_validate(model["config"])
    spec = scoring.scoring_spec(_scorer(model), config)
    report = run_contract(artifacts.get_table(loaded["table_uri"]), spec, config, scoring=True)
    tracking.log_json(run_id, report.raw, "validation/gx_result.json")
    tracking.set_tags(run_id, {"validation.status": "passed" if report.success else "failed",
                               "validation.warnings": str(len(report.warnings()))})
    create_markdown_artifact(report.markdown(), key="scoring-data-contract",
                             description="Great Expectations data contract of the file scored")
    if not report.success:
        raise ContractError(report)
    get_run_logger().info(report.summary())
    return {"checks": len(report.checks), "warnings": [c.observed for c in report.warnings()]}


@task(name="score", **COMPUTE_RETRY)
@releases_memory
def score_windows(loaded: dict, model: dict, params: ScoreConfig) -> dict:
    """Apply the training run's missing-value policy, score every complete window, write the predictions."""
    config = PipelineConfig.model_validate(model["config"])
    scorer = _scorer(model)
    spec = scoring.scoring_spec(scorer, config)
    rows, missing = apply_missing(artifacts.get_table(loaded["table_uri"]), spec, config.data.missing,
                                  config.data.ffill_limit)
    frame = scoring.with_model(score_frame(scorer, rows), model)
    out = scoring.write(frame, data_roots.check(params.out or scoring.default_output(params.data, model),
                                                "output"))
    positives = int(frame["prediction"].sum())
    get_run_logger().info("%d windows scored, %d predicted positive; written to %s", len(frame), positives, out)
    return {"path": str(out), "windows": len(frame), "positives": positives, "missing": missing}


@task(name="log-scores", **IO_RETRY)
@releases_memory
def log_scores(run_id: str, params: ScoreConfig, loaded: dict, scored: dict) -> dict:
    """Rows, windows and the positive prediction rate as metrics; the predictions file as artifact or path."""
    windows = scored["windows"]
    metrics = {"rows_scored": loaded["fingerprint"]["rows"], "windows": windows,
               "positive_predictions": scored["positives"],
               "positive_rate": scored["positives"] / windows if windows else float("nan")}
    tracking.log_metrics(run_id, metrics)
    tracking.log_params(run_id, {"predictions.path": scored["path"]})
    if params.log_predictions:
        tracking.log_file(run_id, scored["path"], "predictions")
    return metrics


@task(name="scoring-summary")
@releases_memory
def scoring_summary(run_id: str, model: dict, loaded: dict, scored: dict, metrics: dict) -> dict:
    """The flow's result, also a Prefect markdown artifact."""
    summary = {"model": {k: model[k] for k in ("name", "version", "uri", "requested", "run_id")},
               "input": loaded["fingerprint"], "predictions": scored["path"], **metrics,
               "mlflow": {"run_id": run_id, "tracking_uri": tracking.client().tracking_uri}}
    create_markdown_artifact(
        f"Scored **{metrics['windows']}** windows of {metrics['rows_scored']} rows with `{model['uri']}`: "
        f"{metrics['positive_predictions']} predicted positive ({metrics['positive_rate']:.2%}).\n\n"
        f"Predictions: `{scored['path']}`", key="batch-scoring", description="Batch scoring result")
    return summary
