"""The registered model's files and its MLflow pyfunc loader: weights as safetensors, everything else as JSON.

A version's ``data/scorer/`` folder holds ``weights.safetensors`` (the scorer's state dict: scaler mean and scale and
the network's or ensemble members' weights), ``scorer.json`` (features, window, threshold, the network's
config, the final model's own evaluation) and ``pipeline_config.json`` (the training run's config). The MLmodel
names this module as its ``loader_module``: MLflow imports it from the installed package and calls
``_load_pyfunc``, which rebuilds the network from ``lstm_core`` and loads the weights. Nothing in the artifact
store is unpickled or executed, so whoever can write there can at worst make a load fail.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from lstm_pipeline import safe_files

FORMAT = "lstm-pipeline-scorer/1"
DATA = "scorer"
WEIGHTS, SPEC, CONFIG = "weights.safetensors", "scorer.json", "pipeline_config.json"


class OldModelFormat(ValueError):
    """A registered version stored in a format this pipeline no longer loads (a pickled scorer)."""


def save(scorer, folder: Path, config: dict[str, Any]) -> Path:
    """Write the three files of a scorer into ``folder`` (created)."""
    from safetensors.torch import save as save_tensors

    folder.mkdir(parents=True, exist_ok=True)
    tree = safe_files.scorer_tree(scorer)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in tree.pop("state_dict").items()}
    safe_files.atomic_write(folder / WEIGHTS, save_tensors(state, metadata={"format": FORMAT}))
    safe_files.atomic_write(folder / SPEC, json.dumps({"format": FORMAT, **tree}, indent=2))
    safe_files.atomic_write(folder / CONFIG, json.dumps(config, indent=2))
    return folder


def load(folder: Path):
    """The ``RareEventScorer`` of a folder ``save`` wrote; ``OldModelFormat`` when it holds no such files."""
    from safetensors.torch import load as load_tensors

    folder = Path(folder)
    if not (folder / SPEC).is_file() or not (folder / WEIGHTS).is_file():
        raise OldModelFormat(f"{folder} holds no {SPEC} and {WEIGHTS}")
    tree = json.loads((folder / SPEC).read_text(encoding="utf-8"))
    if tree.get("format") != FORMAT:
        raise OldModelFormat(f"{folder / SPEC} is format {tree.get('format')!r}, not {FORMAT!r}")
    try:
        tree["state_dict"] = load_tensors((folder / WEIGHTS).read_bytes())
    except Exception as exc:  # safetensors parses data only: a planted pickle is just unreadable
        raise OldModelFormat(f"{folder / WEIGHTS} is not a safetensors file") from exc
    return safe_files.scorer_from_tree(tree)


def find_data(model_dir: Path) -> Path:
    """The folder of a downloaded model that holds ``scorer.json``: MLflow copies ``data_path`` (``DATA``) into
    the model's ``data`` folder, and hands ``_load_pyfunc`` that copy."""
    for candidate in (model_dir / "data" / DATA, model_dir):
        if (candidate / SPEC).is_file():
            return candidate
    raise OldModelFormat(f"{model_dir} holds no {SPEC}")


class PyfuncScorer:
    """What ``mlflow.pyfunc.load_model`` returns inside: raw windows (B, L, F) in, probabilities (B,) out."""

    def __init__(self, scorer) -> None:
        self.scorer = scorer

    def predict(self, model_input, params: dict[str, Any] | None = None) -> np.ndarray:
        import torch

        # a copy: MLflow may hand a read-only array, which torch refuses to share
        x = np.array(model_input, dtype=np.float32, copy=True)
        with torch.inference_mode():
            return self.scorer(torch.as_tensor(x)).numpy()

    def get_raw_model(self):
        return self.scorer


def _load_pyfunc(data_path: str) -> PyfuncScorer:
    """MLflow's entry point for ``loader_module``: ``data_path`` is the model's ``data/scorer`` folder."""
    return PyfuncScorer(load(find_data(Path(data_path))))
