"""Data stages: load, validate, window, split."""
from __future__ import annotations

import tempfile

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from lstm_core.autocorr import resolve_length
from lstm_core.config import PipelineConfig
from lstm_core.data import (
    DataError,
    DataSpec,
    apply_missing,
    fingerprint,
    read_table,
    resolve_spec,
    to_series,
)
from lstm_core.splits import check_fold_positives, fold_summary, make_folds, tuned_rows_clear
from lstm_core.windows import make_windows
from lstm_pipeline import artifacts, data_roots, tracking
from lstm_pipeline.acf_plot import log_window_choice
from lstm_pipeline.contract import ContractError, run_contract
from lstm_pipeline.execution import release_memory, releases_memory
from tasks.policy import COMPUTE_RETRY, IO_RETRY, cached


def _spec(loaded: dict) -> DataSpec:
    return DataSpec(**{**loaded["spec"], "features": tuple(loaded["features"])})


@task(name="load", **IO_RETRY, **cached("data", data_file=True))
@releases_memory
def load_data(config: PipelineConfig) -> dict:
    """Read the user's file (never modified), resolve the columns, fingerprint the content."""
    df = read_table(data_roots.check(config.data.path, "data file"), sep=config.data.sep,
                    max_file_mb=config.data.max_file_mb)
    spec = resolve_spec(df, config.data)
    return {"table_uri": artifacts.put_table(df[list(spec.required)]), "spec": spec.__dict__,
            "features": list(spec.features), "fingerprint": fingerprint(df, spec)}


@task(name="validate", **COMPUTE_RETRY)
@releases_memory
def validate_data(loaded: dict, run_id: str, config: PipelineConfig) -> dict:
    """Run the data contract (report, GX result and Data Docs to MLflow); stop the flow when it fails.

    Returns ``loaded`` without the constant features the contract dropped.
    """
    spec = _spec(loaded)
    with tempfile.TemporaryDirectory() as docs:
        report = run_contract(artifacts.get_table(loaded["table_uri"]), spec, config, docs_dir=docs)
        if report.docs:
            tracking.log_folder(run_id, docs, "validation/data_docs")
    create_markdown_artifact(report.markdown(), key="data-contract", description="Great Expectations data contract")
    tracking.log_json(run_id, report.raw, "validation/gx_result.json")
    kept = [f for f in spec.features if f not in report.dropped]
    tracking.set_tags(run_id, {"validation.status": "passed" if report.success else "failed",
                               "validation.warnings": str(len(report.warnings())),
                               "data.features_dropped": ",".join(report.dropped) or "none"})
    if not report.success:
        raise ContractError(report)
    tracking.log_params(run_id, {"data.features_used": ",".join(kept),
                                 "data.features_dropped": ",".join(report.dropped) or "none"})
    logger = get_run_logger()
    logger.info(report.summary())
    for check in report.warnings():
        logger.warning("data contract warning: %s%s", f"column '{check.column}': " if check.column else "",
                       check.observed)
    return {**loaded, "features": kept, "contract": {"checks": len(report.checks), "dropped": list(report.dropped),
                                                     "warnings": [c.observed for c in report.warnings()]}}


@task(name="window", **COMPUTE_RETRY, **cached("data", "window"))
@releases_memory
def window_data(loaded: dict, config: PipelineConfig, run_id: str | None = None, reads_for: int = 0) -> dict:
    """Apply the missing-value policy, lay the rows out per entity and index every window with a known target.

    ``window: auto`` resolves here, once, reading rows before the first test block of every window up to
    ``reads_for`` rows as well (tuning passes its longest choice)."""
    spec = _spec(loaded)
    rows, missing = apply_missing(artifacts.get_table(loaded["table_uri"]), spec, config.data.missing,
                                  config.data.ffill_limit)
    if run_id and missing["missing_values"]:
        tracking.log_params(run_id, {f"data.missing.{k}": v for k, v in missing.items() if k != "policy"})
    # the table's feature columns are freed (and handed back) as they are copied
    series = to_series(rows, spec, consume=True, release=lambda: release_memory(collect=False))  # no cycles here
    del rows
    config, acf = resolve_length(series, config, reads_for)  # window: auto → an integer, from first-block rows only
    if run_id:
        log_window_choice(run_id, config.window.length, acf)
    index = make_windows(series, config.window.length, config.window.max_gap, config.data.known_after)
    get_run_logger().info("%d windows of %d rows from %d entities, %d positive (%.2f%%); missing values: %s",
                          len(index.ends), config.window.length, len(series.starts), index.y.sum(),
                          100 * index.y.mean() if len(index.y) else 0.0, missing)
    return {"series_uri": artifacts.put_series(series, index), "windows": int(len(index.ends)),
            "positives": int(index.y.sum()), "missing": missing, "length": config.window.length}


@task(name="split", **COMPUTE_RETRY, **cached("data", "split"))
@releases_memory
def split_folds(windows: dict, config: PipelineConfig) -> dict:
    """Walk-forward folds with validation slices, purge and embargo; stop when a part lacks positives."""
    series, index = artifacts.get_series(windows["series_uri"], mmap=True)  # the feature rows are never read here
    folds = make_folds(series, index, config.split)
    for f in folds:
        get_run_logger().info("fold %d: train %d / val %d / test %d windows (%d / %d / %d positive), %d purged",
                              f.k, len(f.train), len(f.val), len(f.test), index.y[f.train].sum(),
                              index.y[f.val].sum(), index.y[f.test].sum(), f.purged)
    problems = check_fold_positives(series, index, folds, config.data.min_positives)
    if problems:
        raise DataError("\n".join(problems))
    _check_tuned_rows(series, folds, config)
    return {"folds_uri": artifacts.put_folds(folds), "folds": [fold_summary(series, index, f) for f in folds]}


def _check_tuned_rows(series, folds: list, config: PipelineConfig) -> None:
    """A config written by tune records where its search stopped reading; every test block must lie after it."""
    before = config.tune.tuned_before
    if before is None:
        return
    ok, where = tuned_rows_clear(series, folds, config)
    if not ok:
        raise DataError(f"this config was tuned on {config.tune.tuned_on}, but {where}, earlier: tuning chose on "
                        "windows these folds would test. Keep the split and data it was tuned with, or tune again")
    get_run_logger().info("tuned on %s; every test block lies after it", config.tune.tuned_on)
