"""Running the contract: the helper columns, GX's validation, the checks in report order, and the
near-constant warnings.

GX runs on an ephemeral context, so nothing is written to disk unless Data Docs are asked for (into a given
folder). great_expectations is imported lazily: it takes seconds, and only validation needs it.
"""
from __future__ import annotations

import gc
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lstm_core.config import PipelineConfig
from lstm_core.data import DataSpec
from lstm_pipeline.contract.context import build_context
from lstm_pipeline.contract.describe import to_check
from lstm_pipeline.contract.near_constant import near_constant_checks
from lstm_pipeline.contract.report import MAX_LINES, Check, ContractReport
from lstm_pipeline.contract.suite import SUITE_NAME, Rules, build_suite

if TYPE_CHECKING:
    import great_expectations as gx

# the order in which one column's checks are reported
_ORDER = (
    "exists", "numeric", "finite", "no_nulls", "null_fraction", "not_constant", "parses", "one_zone_kind",
    "one_offset", "increasing", "gap", "enough_rows", "short_entities", "in_set", "has_positive",
    "has_negative", "prevalence", "rare",
)  # fmt: skip


def run_contract(df: pd.DataFrame, spec: DataSpec, config: PipelineConfig | None = None,
                 docs_dir: str | Path | None = None, scoring: bool = False) -> ContractReport:
    """Validate the table as read (before any sorting or filtering, so that line numbers match the file).

    With ``docs_dir``, GX's Data Docs for this validation are written there (index.html and one page).
    With ``scoring``, the table is one to score with a model trained under ``config``: the same feature,
    time and entity checks, and none on the target, which such a file does not have.
    """
    rules = Rules.from_config(config or PipelineConfig(), scoring)
    table = df.reset_index(drop=True)  # GX reports index labels; positions give line numbers
    columns = rules.columns(spec)
    present = [c for c in columns if c in table.columns]
    ctx = build_context(table[present], spec, rules, frozenset(c for c in columns if c not in table.columns))
    suite = build_suite(spec, rules, ctx.facts)
    result, docs = _validate(ctx.frame, suite, docs_dir)
    raw = _json_safe(result.to_json_dict())
    checks = [to_check(r, ctx) for r in raw["results"]]
    place = {c: i for i, c in enumerate(columns)}
    rank = {k: i for i, k in enumerate(_ORDER)}
    roles = [(r["expectation_config"].get("meta") or {}).get("check", "") for r in raw["results"]]
    order = sorted(range(len(checks)), key=lambda i: (place.get(checks[i].column, len(place)),
                                                      rank.get(roles[i], len(rank))))
    checks = [checks[i] for i in order]
    dropped = tuple(c.column for i, c in zip(order, checks, strict=True) if roles[i] == "not_constant" and not c.success)
    if not scoring:
        near = near_constant_checks(table, spec, set(dropped), config or PipelineConfig())
        checks += near
        if (config or PipelineConfig()).data.near_constant == "drop":
            dropped += tuple(c.column for c in near if not c.success)
    if spec.features and set(dropped) >= set(spec.features):
        checks.append(Check("features_vary", None, False, "every feature is constant: nothing is left to learn from",
                            name="some feature varies"))
    return ContractReport(checks=checks, raw=raw, dropped=tuple(c for c in spec.features if c in dropped), docs=docs)


def _validate(frame: pd.DataFrame, suite: gx.ExpectationSuite, docs_dir: str | Path | None) -> tuple[Any, str | None]:
    """Run the suite on an ephemeral context: in-memory stores, no progress bars or analytics.

    With ``docs_dir``, the context gets one Data Docs site there, and the result is rendered into it.
    """
    # older GX 1.x releases read this to decide on usage events (1.24 sends none); a user's own setting wins
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )
    from great_expectations.validator.validation_statistics import calc_validation_statistics

    sites = {} if docs_dir is None else {"contract": {
        "class_name": "SiteBuilder", "show_how_to_buttons": False,
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }}
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
        analytics_enabled=False,
        data_docs_sites=sites,
    )
    context = gx.get_context(mode="ephemeral", project_config=config)
    # SUMMARY keeps the first MAX_LINES offending rows; COMPLETE would list every one of a million bad rows
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": MAX_LINES}
    results: list[Any] = [None] * len(suite.expectations)
    last = None
    large = int(frame.memory_usage(index=False, deep=False).sum()) >= COLLECT_BYTES
    for columns, positions in _column_groups(suite, frame):
        # A group of columns at a time (at most GROUP_BYTES of them; a small table is one group), each on a frame
        # of those columns alone. GX keeps every metric of a validation (a boolean Series per expectation and
        # column) until it ends, and filters the whole batch frame row by row for each expectation's unexpected
        # values: on a large whole table that was several copies of it at once. Every expectation reads its own
        # column only, so each result is the one the whole table gives.
        part = frame[[c for c in columns if c in frame.columns]]
        asset = context.data_sources.add_pandas("rows").add_dataframe_asset("table")
        try:
            batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": part})
            group = gx.ExpectationSuite(name=suite.name, expectations=[suite.expectations[i] for i in positions])
            last = batch.validate(group, result_format=result_format)
        finally:
            # GX keeps its last context alive, and the data source caches the batch and every metric it
            # computed until the process ends
            context.data_sources.delete("rows")
        for i, r in zip(positions, last.results, strict=True):
            results[i] = r
        del batch, part, asset
        if large:
            gc.collect()  # the group's validator, batch and metrics form reference cycles that hold its columns
    stats = calc_validation_statistics(results)
    result = ExpectationSuiteValidationResult(
        success=stats.success, results=results, suite_name=suite.name,
        statistics={"evaluated_expectations": stats.evaluated_expectations,
                    "successful_expectations": stats.successful_expectations,
                    "unsuccessful_expectations": stats.unsuccessful_expectations,
                    "success_percent": stats.success_percent},
        meta=last.meta if last is not None else {}, batch_id=last.batch_id if last is not None else None)
    docs = _data_docs(context, result, Path(docs_dir)) if docs_dir is not None else None
    return result, docs


# Bytes of a table from which on each group's garbage is collected as the group ends. A GX validation's objects
# form reference cycles that hold the group's columns and every metric computed on them, and Python collects
# its oldest generation only when it has grown by a quarter, which in a process holding Prefect, MLflow and GX
# is rare: a 10M-row table's cycles (2 GB) outlived the contract into the next stages, and each group's sat
# under the next group's peak. A collection walks every object of the process (0.3-0.4 s there), more than a
# small table's cycles are worth.
COLLECT_BYTES = 64 << 20

# Bytes of table columns one GX validation reads: a GX run has a fixed cost (about 0.2 s), so small tables are
# validated in one run, and a large one in groups whose copies GX makes stay small.
GROUP_BYTES = 128 << 20


def _column_groups(suite: gx.ExpectationSuite, frame: pd.DataFrame) -> list[tuple[list[str], list[int]]]:
    """(columns, positions of their expectations) per validation run: consecutive columns of the suite, a new
    group whenever the next column would take the group's column bytes over GROUP_BYTES."""
    groups: list[tuple[list[str], list[int]]] = []
    columns: list[str] = []
    positions: list[int] = []
    size = 0
    for column, where in _by_column(suite).items():
        nbytes = int(frame[column].memory_usage(index=False, deep=False)) if column in frame.columns else 0
        if columns and size + nbytes > GROUP_BYTES:
            groups.append((columns, positions))
            columns, positions, size = [], [], 0
        columns.append(column)
        positions.extend(where)
        size += nbytes
    if columns:
        groups.append((columns, positions))
    return groups


def _by_column(suite: gx.ExpectationSuite) -> dict[str, list[int]]:
    """Positions of the suite's expectations by the one column each reads, in the suite's order."""
    out: dict[str, list[int]] = {}
    for i, expectation in enumerate(suite.expectations):
        out.setdefault(expectation.column, []).append(i)
    return out


def _data_docs(context: Any, result: Any, folder: Path) -> str | None:
    """Store the result in the context's in-memory store and build the site's pages from it.

    Only the static files the pages link to are kept (GX copies megabytes of images the pages never show).
    Data Docs are a report: if GX cannot build them, the contract's verdict stands without them.
    """
    from datetime import datetime, timezone

    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    key = ValidationResultIdentifier(
        expectation_suite_identifier=ExpectationSuiteIdentifier(name=SUITE_NAME),
        run_id=RunIdentifier(run_name="lstm-pipeline", run_time=datetime.now(timezone.utc)),
        batch_identifier="table",
    )
    try:
        context.validation_results_store.set(key, result)
        built = context.build_data_docs(resource_identifiers=[key])
    except Exception:  # noqa: BLE001 - a report that cannot be drawn must not change the verdict
        return None
    pages = " ".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*.html"))
    for path in (folder / "static").rglob("*"):
        if path.is_file() and path.name not in pages:
            path.unlink()
    return next(iter(built.values()), None)


def _json_safe(value: Any) -> Any:
    """GX's result as strict JSON: ±inf and NaN (an offending value, say) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value
