"""The training pipeline: validate, window, walk forward, compare with baselines, refit, register."""
from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from lstm_core.config import PipelineConfig
from lstm_pipeline import progress
from lstm_pipeline.report import run_name
from tasks.data import load_data, split_folds, validate_data, window_data
from tasks.folds import evaluate_baselines, evaluate_lstm, prepare_fold, resample_fold, train_fold
from tasks.tracking import (
    aggregate,
    finish_run,
    gate_model,
    log_fold,
    refit_final,
    register_model,
    start_run,
    summarise,
)


def _flow_run_name() -> str:
    """Runs read like the MLflow parent run: '<file>-w<window>-<strategy>'."""
    config = flow_run.parameters["config"]
    return run_name(config if isinstance(config, PipelineConfig) else PipelineConfig.model_validate(config))


@flow(name="training_pipeline", flow_run_name=_flow_run_name, log_prints=True)
def training_pipeline(config: PipelineConfig) -> dict:
    """Can an LSTM warn of the event? Purged walk-forward folds against baselines, then register."""
    loaded = load_data(config)
    run_id = start_run(config, loaded)
    try:
        loaded = validate_data(loaded, run_id, config)  # less any constant feature the contract dropped
        windows = window_data(loaded, config, run_id)
        split = split_folds(windows, config)
        folds = []
        for summary in split["folds"]:
            k = summary["fold"]
            progress.report("fold", fold=k, folds=len(split["folds"]))
            fold_uri = prepare_fold(windows, split, k, config)
            resampled = resample_fold(fold_uri, k, config)
            trained = train_fold(resampled, fold_uri, k, config)
            lstm = evaluate_lstm(trained, fold_uri, k, config)
            baselines = evaluate_baselines(fold_uri, k, config)
            log_fold(run_id, config, k, summary, resampled, trained, lstm, baselines)
            folds.append({"k": k, "trained": trained, "lstm": lstm, "baselines": baselines})
        agg = aggregate(run_id, config, folds)
        progress.report("fold", fold="final", folds=len(split["folds"]), epochs=agg["final_epochs"])
        scorer_uri = refit_final(windows, config, agg)
        registered = register_model(scorer_uri, run_id, config, loaded, agg)
        registered = gate_model(registered, config)
        result = summarise(run_id, config, loaded, windows, split, folds, agg, registered)
    except BaseException:
        finish_run(run_id, "FAILED")
        raise
    finish_run(run_id, "FINISHED")
    return result
