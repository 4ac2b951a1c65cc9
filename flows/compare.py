"""Does resampling help? The same walk-forward folds, once per imbalance strategy, next to the baselines.

Loading, validation, windows, folds, each fold's scaled window sets and the baselines are computed once and
shared; only resample, train and evaluate run per strategy, with the same seeds. Nothing is registered.
"""
from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from lstm_core.config import PipelineConfig, Strategy
from lstm_core.data import DataError
from lstm_pipeline import progress
from lstm_pipeline.report import compare_run_name
from tasks.compare import compare, fail_strategy, log_strategy, start_comparison, start_strategy
from tasks.data import load_data, split_folds, validate_data, window_data
from tasks.folds import evaluate_baselines, evaluate_lstm, prepare_fold, resample_fold, train_fold
from tasks.tracking import finish_run


def _flow_run_name() -> str:
    config = flow_run.parameters["config"]
    return compare_run_name(config if isinstance(config, PipelineConfig) else PipelineConfig.model_validate(config))


def with_strategy(config: PipelineConfig, strategy: str) -> PipelineConfig:
    """The same config with another imbalance strategy (validated like any config)."""
    tree = config.model_dump(mode="json")
    tree["resample"]["strategy"] = strategy
    return PipelineConfig.model_validate(tree)


def _strategy_folds(folds: list[dict], config: PipelineConfig, strategy: str) -> list[dict]:
    """Resample, train and evaluate every shared fold with one strategy."""
    runs = []
    for f in folds:
        k, fold_uri = f["k"], f["fold_uri"]
        progress.report("fold", fold=k, folds=len(folds), strategy=strategy)
        resampled = resample_fold.with_options(task_run_name=f"resample-{strategy}-fold-{k}")(fold_uri, k, config)
        trained = train_fold.with_options(task_run_name=f"train-{strategy}-fold-{k}")(resampled, fold_uri, k, config)
        lstm = evaluate_lstm.with_options(task_run_name=f"evaluate-{strategy}-fold-{k}")(trained, fold_uri, k, config)
        runs.append({"k": k, "resampled": resampled, "trained": trained, "lstm": lstm})
    return runs


@flow(name="compare_resampling", flow_run_name=_flow_run_name, log_prints=True)
def compare_resampling(config: PipelineConfig, strategies: list[Strategy]) -> dict:
    """Which imbalance strategy helps the LSTM on these folds, and does any beat the best baseline?"""
    if not strategies:
        raise ValueError("give at least one strategy to compare")
    strategies = list(dict.fromkeys(strategies))  # each strategy once, in the order given
    loaded = load_data(config)
    run_id = start_comparison(config, loaded, strategies)
    try:
        loaded = validate_data(loaded, run_id, config)  # less any constant feature the contract dropped
        windows = window_data(loaded, config, run_id)
        split = split_folds(windows, config)
        folds = []
        for summary in split["folds"]:
            k = summary["fold"]
            fold_uri = prepare_fold(windows, split, k, config)
            folds.append({"k": k, "summary": summary, "fold_uri": fold_uri,
                          "baselines": evaluate_baselines(fold_uri, k, config)})
        outcomes: dict[str, dict] = {}
        for strategy in strategies:
            progress.report("strategy", strategy=strategy)
            cfg = with_strategy(config, strategy)
            child = start_strategy(run_id, cfg, strategy)
            try:
                runs = _strategy_folds(folds, cfg, strategy)
            except DataError as exc:  # this strategy cannot run on these folds; the others still can
                outcomes[strategy] = fail_strategy(child, strategy, str(exc))
                continue
            except BaseException:  # anything else stops the comparison; the strategy's run must not stay open
                finish_run(child, "FAILED")
                raise
            outcomes[strategy] = log_strategy(child, strategy, runs)
        result = compare(run_id, config, folds, outcomes)
    except BaseException:
        finish_run(run_id, "FAILED")
        raise
    finish_run(run_id, "FINISHED")
    return result
