"""Data stages: load, validate, window, split."""
from __future__ import annotations

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from lstm_core.config import PipelineConfig
from lstm_core.data import DataSpec, fingerprint, read_table, resolve_spec, to_series
from lstm_core.splits import fold_summary, make_folds
from lstm_core.windows import make_windows
from lstm_pipeline import artifacts, tracking
from lstm_pipeline.contract import ContractError, run_contract
from tasks.policy import COMPUTE_RETRY, IO_RETRY


def _spec(loaded: dict) -> DataSpec:
    return DataSpec(**{**loaded["spec"], "features": tuple(loaded["features"])})


@task(name="load", **IO_RETRY)
def load_data(config: PipelineConfig) -> dict:
    """Read the user's file (never modified), resolve the columns, fingerprint the content."""
    df = read_table(config.data.path)
    spec = resolve_spec(df, config.data)
    return {"table_uri": artifacts.put_table(df[list(spec.required)]), "spec": spec.__dict__,
            "features": list(spec.features), "fingerprint": fingerprint(df, spec)}


@task(name="validate", **COMPUTE_RETRY)
def validate_data(loaded: dict, run_id: str) -> dict:
    """Run the data contract; stop the flow before anything trains when it fails."""
    spec = _spec(loaded)
    report = run_contract(artifacts.get_table(loaded["table_uri"]), spec)
    create_markdown_artifact(report.markdown(), key="data-contract", description="Great Expectations data contract")
    tracking.log_json(run_id, report.raw, "validation/gx_result.json")
    if not report.success:
        raise ContractError(report)
    get_run_logger().info("data contract holds: %d checks passed", len(report.checks))
    return {"checks": len(report.checks), "passed": True}


@task(name="window", **COMPUTE_RETRY)
def window_data(loaded: dict, config: PipelineConfig) -> dict:
    """Lay the rows out per entity and index every window with a known target."""
    spec = _spec(loaded)
    series = to_series(artifacts.get_table(loaded["table_uri"]), spec)
    index = make_windows(series, config.window.length, config.window.max_gap)
    get_run_logger().info("%d windows of %d rows from %d entities, %d positive (%.2f%%)", len(index.ends),
                          config.window.length, len(series.starts), index.y.sum(), 100 * index.y.mean())
    return {"series_uri": artifacts.put_series(series, index), "windows": int(len(index.ends)),
            "positives": int(index.y.sum())}


@task(name="split", **COMPUTE_RETRY)
def split_folds(windows: dict, config: PipelineConfig) -> dict:
    """Walk-forward folds with validation slices, purge and embargo."""
    series, index = artifacts.get_series(windows["series_uri"])
    folds = make_folds(series, index, config.split)
    for f in folds:
        get_run_logger().info("fold %d: train %d / val %d / test %d windows (%d / %d / %d positive), %d purged",
                              f.k, len(f.train), len(f.val), len(f.test), index.y[f.train].sum(),
                              index.y[f.val].sum(), index.y[f.test].sum(), f.purged)
    return {"folds_uri": artifacts.put_folds(folds), "folds": [fold_summary(series, index, f) for f in folds]}
