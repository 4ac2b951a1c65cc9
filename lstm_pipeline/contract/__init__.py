"""The data contract (see lstm_pipeline.contract.runner): the names other modules import."""
from __future__ import annotations

from lstm_pipeline.contract.runner import (
    ContractError,
    Facts,
    Rules,
    build_suite,
    fold_checks,
    near_constant_features,
    run_contract,
)

__all__ = ["ContractError", "Facts", "Rules", "build_suite", "fold_checks", "near_constant_features", "run_contract"]
