"""The parent MLflow run of a training run: a run resumed after a crash continues the run it started."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from prefect import get_run_logger, task

from lstm_core.config import PipelineConfig
from lstm_pipeline import artifacts, report, tracking
from lstm_pipeline.execution import releases_memory
from tasks.policy import IO_RETRY

RESUME_TAG = "pipeline.resume_key"
UNFINISHED = ("RUNNING", "FAILED", "KILLED")


def resume_key(config: PipelineConfig, loaded: dict) -> str:
    """Same data and same config (where the run executes aside) give the same key."""
    tree = config.model_dump(mode="json", exclude={"execution"})
    return hashlib.sha256(json.dumps([loaded["fingerprint"]["hash"], tree], sort_keys=True).encode()).hexdigest()


def _start(config: PipelineConfig, loaded: dict) -> str:
    """A new parent MLflow run: flattened config plus the data fingerprint as params, the dataset as input."""
    fp = loaded["fingerprint"]
    params = {**config.flat(), **{f"data.fingerprint.{k}": v for k, v in fp.items()},
              "data.features_resolved": ",".join(loaded["features"])}
    run_id = tracking.start_run(config.register.experiment, report.run_name(config), params,
                                {"pipeline": "training_pipeline", "data.hash": fp["hash"]})
    tracking.log_dataset(run_id, artifacts.get_table(loaded["table_uri"]), str(config.data.path),
                         Path(str(config.data.path)).name, config.data.target_col, fp["hash"])
    return run_id


@task(name="open-run", **IO_RETRY)
@releases_memory
def open_run(config: PipelineConfig, loaded: dict) -> str:
    """Reopen the latest unfinished (killed or failed) parent run of this data and config, else start one.

    A finished run is never reopened: training the same data again on purpose gives a new run and version.
    """
    key, client = resume_key(config, loaded), tracking.client()
    experiment = tracking.experiment_id(config.register.experiment)
    runs = client.search_runs([experiment], f"tags.`{RESUME_TAG}` = '{key}'", order_by=["attributes.start_time DESC"],
                              max_results=1)
    if runs and runs[0].info.status in UNFINISHED:
        run = runs[0]
        client.update_run(run.info.run_id, status="RUNNING")
        resumed = int(run.data.tags.get("pipeline.resumed", "0")) + 1
        client.set_tag(run.info.run_id, "pipeline.resumed", str(resumed))
        tracking.set_tags(run.info.run_id, tracking.prefect_link())  # the attempt that finishes it
        get_run_logger().info("resuming MLflow run %s (was %s); finished stages come from the cache",
                              run.info.run_id, run.info.status)
        return run.info.run_id
    run_id = _start(config, loaded)
    client.set_tag(run_id, RESUME_TAG, key)
    return run_id
