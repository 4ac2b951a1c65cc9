"""What a trained model is a function of: the data, the config and the code that trained it.

Two runs with the same identity train the same model, so a scheduled re-run on unchanged data registers
nothing new (``registry.unchanged_since``).
"""
from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
from pathlib import Path

from lstm_core.config import PipelineConfig

# Every package whose source decides what a training run produces, from the network to the registered files.
PACKAGES = ("lstm_core", "lstm_pipeline", "tasks", "flows")
# Sections that say where and under which name a run is recorded, not what it trains.
NOT_TRAINING = {"execution", "register", "tune"}


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over the source files of ``PACKAGES``, found without importing them."""
    h = hashlib.sha256()
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        roots = list(spec.submodule_search_locations or []) if spec else []
        for root in roots:
            for path in sorted(Path(root).rglob("*.py")):
                h.update(f"{package}/{path.relative_to(root).as_posix()}".encode())
                h.update(path.read_bytes())
    return h.hexdigest()


def model_identity(config: PipelineConfig, data_hash: str) -> str:
    """sha256 of the data fingerprint, the config sections that shape the model, and the code."""
    tree = config.model_dump(mode="json", exclude=NOT_TRAINING)
    payload = json.dumps({"data": data_hash, "config": tree, "code": code_digest()}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
