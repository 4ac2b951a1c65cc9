"""The training pipeline: validate, window, walk forward, compare with baselines, refit, register."""
from __future__ import annotations

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from flows.common import prologue, results, submit_baselines, submit_lstm, submit_prepare
from lstm_core.config import PipelineConfig
from lstm_pipeline import home_lock, naming, progress, settings
from lstm_pipeline.report import run_name
from tasks.data import load_data
from tasks.interpret import interpret_final
from tasks.policy import cached
from tasks.runs import open_run, resume_key
from tasks.tracking import (
    aggregate,
    finish_run,
    gate_model,
    log_fold,
    refit_final,
    register_model,
    summarise,
)

# A resumed run must not open a second nested run for a fold it logged before the crash: the child's id is
# cached on the parent run and the fold's results.
log_fold_once = log_fold.with_options(**cached("register"))


def _derived_name(parameters: dict) -> str:
    """'<file>-w<window>-<strategy>'; the run's due minute follows it (``naming.keep_given_name``)."""
    config = parameters["config"]
    return run_name(config if isinstance(config, PipelineConfig) else PipelineConfig.model_validate(config))


# One worker thread unless the caller picks another runner (lstm_pipeline.execution.task_runner): two folds
# training in threads of one process would share torch's global RNG and lose reproducibility.
@flow(name="training_pipeline", flow_run_name=naming.keep_given_name(_derived_name), log_prints=True,
      task_runner=ThreadPoolTaskRunner(max_workers=1))
def training_pipeline(config: PipelineConfig) -> dict:
    """Can an LSTM warn of the event? Purged walk-forward folds against baselines, then register.

    Finished stages are cached and training checkpoints every epoch: run it again after a crash and it goes on
    where it stopped, in the same MLflow run.
    """
    loaded = load_data(config)
    # One run per home and data/config at a time: a second identical run (a dashboard run beside the nightly
    # one) would reopen this RUNNING MLflow run and could register twice. It is refused in one line instead.
    with home_lock.run_lock(settings.home(), f"training:{resume_key(config, loaded)}"):
        run_id = open_run(config, loaded)
        try:
            loaded, windows, split = prologue(loaded, run_id, config)
            config = config.with_values({"window.length": windows["length"]})  # window: auto, resolved once by the window stage
            submitted = {}
            for k, fold_uri in submit_prepare(windows, split, config).items():
                submitted[k] = {**submit_lstm(fold_uri, k, config), "baselines": submit_baselines(fold_uri, k, config)}
            folds = []
            for summary in split["folds"]:  # MLflow bookkeeping stays in this process, in fold order
                k = summary["fold"]
                done = results(submitted[k])
                log_fold_once(run_id, config, k, summary, done["resampled"], done["trained"], done["lstm"], done["baselines"])
                folds.append({"k": k, "trained": done["trained"], "lstm": done["lstm"], "baselines": done["baselines"]})
            agg = aggregate(run_id, config, folds)
            progress.report("fold", fold="final", folds=len(split["folds"]), epochs=agg["final_epochs"])
            scorer_uri = refit_final(windows, config, agg)
            interpret_final(scorer_uri, windows, split, folds, run_id, config)
            registered = register_model(scorer_uri, run_id, config, loaded, agg)
            registered = gate_model(registered, config)
            result = summarise(run_id, config, loaded, windows, split, folds, agg, registered)
        except BaseException:
            finish_run(run_id, "FAILED")
            raise
        finish_run(run_id, "FINISHED")
        return result
