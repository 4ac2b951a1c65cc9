"""The tuning flow: which network settings give the best mean validation PR-AUC over inner walk-forward folds?

Nested walk-forward: the outer folds (``split``) are what ``train --config best.yaml`` reports. Their test
blocks are fixed first, and the search reads only the windows before the first of them, for every window
length it may try: ``tune.inner_folds`` inner folds are cut from those windows, with purge, and the objective
is the mean validation PR-AUC over them. The best config records those rows (``tune.tuned_on``).

Trial 0 is the config as given, so "better than what I have" is measured, not assumed. Trials are asked from
Optuna ``tune.parallel`` at a time and trained fold by fold: every fold's tasks are submitted together (on
Dask workers with ``execution.executor=dask``), then each trial reports its fold value to the median pruner,
which may stop it before the next fold.
"""
from __future__ import annotations

import math
import time

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from lstm_core.config import PipelineConfig
from lstm_core.data import DataError
from lstm_core.episodes import aggregate_episodes
from lstm_pipeline import naming, progress
from lstm_pipeline.tuning import new_study, search_space, tune_run_name
from tasks.data import load_data, validate_data, window_data
from tasks.folds import prepare_fold
from tasks.tracking import finish_run
from tasks.tuning import finish_tuning, fit_trial_fold, log_trial, split_inner, start_trial, start_tuning


def _derived_name(parameters: dict) -> str:
    config = parameters["config"]
    return tune_run_name(config if isinstance(config, PipelineConfig) else PipelineConfig.model_validate(config))


def longest_length(config: PipelineConfig) -> int:
    """The longest window the search may try: the inner folds' boundary must hold for every one of them."""
    return max([config.window.length, *config.tune.window])


def _folds_for(loaded: dict, config: PipelineConfig, cache: dict, longest: int,
               windows: dict | None = None) -> dict[int, str]:
    """Inner fold k → its stored window sets, for this config's window length (computed once per length)."""
    length = config.window.length
    if length not in cache:
        try:
            windows = windows or window_data.with_options(task_run_name=f"window-{length}")(loaded, config)
            split = split_inner.with_options(task_run_name=f"split-inner-{length}")(windows, config, longest)
            cache["scope"] = split
            cache[length] = {s["fold"]: prepare_fold.with_options(task_run_name=f"prepare-w{length}-fold-{s['fold']}")(
                windows, split, s["fold"], config) for s in split["folds"]}
        except DataError as exc:  # this length cannot be cut into folds; trials asking for it fail, others run
            cache[length] = exc
    if isinstance(cache[length], Exception):
        raise cache[length]
    return cache[length]


def _start(trial, loaded: dict, config: PipelineConfig, parent: str, cache: dict, longest: int) -> dict:
    """A trial's config, folds and nested run; a config or length that cannot run fails the trial only."""
    run = {"trial": trial, "number": trial.number, "params": dict(trial.params), "fold_values": [], "fold_episodes": [],
           "state": "RUNNING", "error": None, "started": time.perf_counter()}
    try:
        run["config"] = config.with_values(trial.params)
        run["folds"] = _folds_for(loaded, run["config"], cache, longest)
    except (DataError, ValueError) as exc:
        run.update(state="FAIL", error=str(exc), config=config, folds={})
    run["run_id"] = start_trial(parent, run["config"], trial.number, run["params"])
    return run


def _step(runs: list[dict], k: int) -> None:
    """Fold k for every running trial at once; each reports to the pruner, which may stop it."""
    futures = {r["number"]: fit_trial_fold.submit(r["folds"][k], k, r["number"], r["config"])
               for r in runs if r["state"] == "RUNNING"}
    for r in runs:
        if r["number"] not in futures:
            continue
        try:
            done = futures[r["number"]].result()
            value = done["val_pr_auc"]
        except Exception as exc:  # a crash in one trial (out of memory, a bad combination) fails that trial only
            r.update(state="FAIL", error=f"fold {k}: {type(exc).__name__}: {exc}")
            continue
        r["fold_values"].append(None if math.isnan(value) else value)
        r["fold_episodes"].append(done.get("episode") or {})
        if not math.isnan(value):
            r["trial"].report(value, step=k)
            if r["trial"].should_prune():
                r["state"] = "PRUNED"


def _finish(study, r: dict, trials: int) -> dict:
    """Tell Optuna how the trial ended and record it in its nested run."""
    from optuna.trial import TrialState

    seen = [v for v in r["fold_values"] if v is not None]
    value = sum(seen) / len(seen) if seen else None
    if r["state"] == "RUNNING":
        r["state"] = "COMPLETE" if value is not None else "FAIL"
        r["error"] = r["error"] or (None if seen else "no validation slice holds a positive window")
    study.tell(r["trial"], value if r["state"] == "COMPLETE" else None, state=TrialState[r["state"]])
    outcome = {"number": r["number"], "state": r["state"], "params": r["params"], "value": value,
               "fold_values": r["fold_values"], "seconds": time.perf_counter() - r["started"], "error": r["error"],
               "run_id": r["run_id"],
               "episode": aggregate_episodes(r["fold_episodes"]) if r["fold_episodes"] and all(r["fold_episodes"]) else {}}
    log_trial(r["run_id"], r["number"], outcome)
    progress.report("trial", trials=trials, **{k: outcome[k] for k in ("number", "state", "value", "params")})
    return outcome


# One worker thread unless the caller picks a runner: torch seeds one process-wide generator, so two trials
# training in threads of one process would draw each other's random numbers and neither would repeat.
# Dask workers are processes (execution.executor=dask), where trials run in parallel and still repeat.
@flow(name="tuning", flow_run_name=naming.keep_given_name(_derived_name), log_prints=True, task_runner=ThreadPoolTaskRunner(max_workers=1))
def tuning_flow(config: PipelineConfig, trials: int | None = None, out: str | None = None) -> dict:
    """Search the network's settings by mean validation PR-AUC over inner walk-forward folds before the first
    outer test block; write the best config as YAML (``out``, default under the pipeline home) that
    ``lstm-pipeline train --config`` reads."""
    n_trials = trials or config.tune.trials
    loaded = load_data(config)
    parent = start_tuning(config, loaded, n_trials)
    try:
        loaded = validate_data(loaded, parent, config)  # less any constant feature the contract dropped
        # window: auto resolves here, on rows before every outer test block of any length the search may try
        windows = window_data(loaded, config, parent, max(config.tune.window, default=0))
        config = config.with_values({"window.length": windows["length"]})
        cache: dict = {}
        longest = longest_length(config)
        _folds_for(loaded, config, cache, longest, windows)
        study, outcomes = new_study(config, tune_run_name(config)), []
        while len(outcomes) < n_trials:
            asked = [study.ask(search_space(config)) for _ in range(min(config.tune.parallel, n_trials - len(outcomes)))]
            runs = [_start(t, loaded, config, parent, cache, longest) for t in asked]
            for k in range(1, config.tune.inner_folds + 1):
                _step(runs, k)
            outcomes += [_finish(study, r, n_trials) for r in runs]
        result = finish_tuning(parent, config, outcomes, out, cache.get("scope"))
    except BaseException:
        finish_run(parent, "FAILED")
        raise
    return result
