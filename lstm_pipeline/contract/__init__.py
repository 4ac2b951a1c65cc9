"""The data contract: a Great Expectations suite built from the config and the resolved DataSpec.

The checks are GX's; this package turns their results into lines a user can act on, such as
"column 'x': 3 null value(s) at lines 6, 19, 202". Line numbers are those of the file as read, with the
header as line 1: row i of the table is line i + 2.

Rules that hold per entity or per row pair (time strictly increasing within each entity, rows per entity,
one kind of time zone) have no GX expectation of their own. They are computed as helper columns
('timestamp: step', 'machine: rows'), and plain GX expectations validate those, so every result still
lands in GX's report and its Data Docs.

Each check has a severity: an "error" breaks the contract; a "warning" is reported and the contract holds.
Constant features are a warning, and they are dropped from the features. Near-constant features (one value in
at least ``NEAR_CONSTANT_SHARE`` of the rows and at most ``NEAR_CONSTANT_DISTINCT`` distinct values per row) are
a warning too; ``data.near_constant`` says whether they are dropped or kept.

GX runs on an ephemeral context, so nothing is written to disk unless Data Docs are asked for (into a given
folder). great_expectations is imported lazily: it takes seconds, and only validation needs it.

Modules, each importing only those above it:

- ``report``: Check, ContractReport, ContractError;
- ``suite``: the knobs (Rules), what the table decides (Facts), the helper columns' names and the GX suite;
- ``context``: the helper columns computed on the table, and what the describers read;
- ``describe``: one GX result in words, a describer per rule;
- ``near_constant``: the near-constant rule, computed with pandas;
- ``runner``: run_contract, GX's validation and its Data Docs;
- ``folds``: the dry run of the windows and folds, without GX.
"""
from __future__ import annotations

from lstm_pipeline.contract.folds import fold_checks
from lstm_pipeline.contract.near_constant import near_constant_features
from lstm_pipeline.contract.report import ContractError
from lstm_pipeline.contract.runner import run_contract
from lstm_pipeline.contract.suite import Facts, Rules, build_suite

__all__ = ["ContractError", "Facts", "Rules", "build_suite", "fold_checks", "near_constant_features", "run_contract"]
