"""Does resampling help? The same walk-forward folds, once per imbalance strategy, next to the baselines.

Loading, validation, windows, folds, each fold's scaled window sets and the baselines are computed once and
shared; only resample, train and evaluate run per strategy, with the same seeds. Nothing is registered.
"""
from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import prologue, results, submit_baselines, submit_lstm, submit_prepare
from lstm_core.config import PipelineConfig, Strategy
from lstm_core.data import DataError
from lstm_pipeline import naming, progress
from lstm_pipeline.report import compare_run_name
from tasks.compare import compare, fail_strategy, log_strategy, start_comparison, start_strategy
from tasks.data import load_data
from tasks.tracking import finish_run


def _derived_name(parameters: dict) -> str:
    config = parameters["config"]
    return compare_run_name(config if isinstance(config, PipelineConfig) else PipelineConfig.model_validate(config))


def _strategy_outcome(run_id: str, config: PipelineConfig, strategy: str, folds: dict[int, dict]) -> dict:
    """The strategy's child run, logged from its finished folds, or FAILED with the reason it could not run."""
    progress.report("strategy", strategy=strategy)
    child = start_strategy(run_id, config, strategy)
    try:
        runs = [{"k": k, **results(f)} for k, f in folds.items()]
    except DataError as exc:  # this strategy cannot run on these folds; the others still can
        return fail_strategy(child, strategy, str(exc))
    except BaseException:  # anything else stops the comparison; the strategy's run must not stay open
        finish_run(child, "FAILED")
        raise
    return log_strategy(child, strategy, runs)


# One worker thread unless the caller picks another runner (lstm_pipeline.execution.task_runner): two folds
# training in threads of one process would share torch's global RNG and lose reproducibility.
@flow(name="compare_resampling", flow_run_name=naming.keep_given_name(_derived_name), log_prints=True,
      task_runner=ThreadPoolTaskRunner(max_workers=1))
def compare_resampling(config: PipelineConfig, strategies: list[Strategy]) -> dict:
    """Which imbalance strategy helps the LSTM on these folds, and does any beat the best baseline?

    Every (strategy, fold) is submitted at once, so a Dask runner trains them in parallel; each strategy's
    MLflow run is opened and logged here once its folds are done, in the order given.
    """
    if not strategies:
        raise ValueError("give at least one strategy to compare")
    strategies = list(dict.fromkeys(strategies))  # each strategy once, in the order given
    loaded = load_data(config)
    run_id = start_comparison(config, loaded, strategies)
    try:
        loaded, windows, split = prologue(loaded, run_id, config)
        config = config.with_values({"window.length": windows["length"]})  # window: auto, resolved once by the window stage
        prepared = submit_prepare(windows, split, config)
        baselines = {k: submit_baselines(uri, k, config) for k, uri in prepared.items()}
        configs = {s: config.with_values({"resample.strategy": s}) for s in strategies}
        submitted = {s: {k: submit_lstm(uri, k, configs[s], s) for k, uri in prepared.items()} for s in strategies}
        folds = [{"k": s["fold"], "summary": s, "fold_uri": prepared[s["fold"]].result(),
                  "baselines": baselines[s["fold"]].result()} for s in split["folds"]]
        outcomes = {s: _strategy_outcome(run_id, configs[s], s, submitted[s]) for s in strategies}
        result = compare(run_id, config, folds, outcomes)
    except BaseException:
        finish_run(run_id, "FAILED")
        raise
    finish_run(run_id, "FINISHED")
    return result
