"""Files that are never half-written and never run code when read.

``atomic_write`` writes to a temporary file in the target's folder and renames it over the target, so a
reader sees the old file or the new one, never a truncated one. ``save_tree`` / ``load_tree`` store a tree of
tensors, arrays and JSON-able values (a training result, a checkpoint, a scorer) as one safetensors file: the
tensors in its body, everything else as JSON in its header. Reading one parses data only; unlike a pickle
(``torch.save``, ``np.save`` of objects, MLflow's pickled models) it cannot execute anything, so a file
planted in a shared workspace or artifact store can at worst fail to load.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

FORMAT = "lstm-pipeline-tree/1"


class UnsafeFile(ValueError):
    """A file that is not in a format this pipeline reads without executing it (an old pickle, say)."""


def write_temp(directory: Path, write: Callable[[BinaryIO], object]) -> Path:
    """``write(fh)`` into a new temporary file in ``directory``; removed again if writing fails."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write(path: str | Path, data: bytes | str | Callable[[BinaryIO], object]) -> Path:
    """Write ``data`` (bytes, UTF-8 text, or a function writing to a binary handle) to ``path`` atomically.

    The temporary file lives in the same folder (a rename across filesystems is not atomic), which is created.
    """
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    write = (lambda fh: fh.write(data)) if isinstance(data, bytes) else data
    os.replace(write_temp(path.parent, write), path)
    return path


def sha256_file(path: str | Path) -> str:
    """The hex sha256 of a file's bytes, read in chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


# --- trees of tensors and JSON ---------------------------------------------------------------------------------

def _encode(value: Any, tensors: dict[str, Any]) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = value.detach().cpu().contiguous().clone()  # safetensors refuses shared storage
        return {"__tensor__": key}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError("an object array cannot be stored without pickle")
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in value]}
    if isinstance(value, list):
        return [_encode(v, tensors) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, tensors) for k, v in value.items()}
        return {"__items__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"{type(value).__name__} cannot be stored as tensors and JSON")


def _decode(value: Any, tensors: dict[str, Any]) -> Any:
    if isinstance(value, list):
        return [_decode(v, tensors) for v in value]
    if not isinstance(value, dict):
        return value
    if "__tensor__" in value:
        return tensors[value["__tensor__"]]
    if "__ndarray__" in value:
        return np.array(value["__ndarray__"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if "__tuple__" in value:
        return tuple(_decode(v, tensors) for v in value["__tuple__"])
    if "__items__" in value:
        return {_decode(k, tensors): _decode(v, tensors) for k, v in value["__items__"]}
    return {k: _decode(v, tensors) for k, v in value.items()}


def tree_bytes(tree: Any) -> bytes:
    """``tree`` (dicts, lists, tuples, tensors, small arrays, numbers, strings) as safetensors bytes."""
    from safetensors.torch import save

    tensors: dict[str, Any] = {}
    header = json.dumps(_encode(tree, tensors))
    return save(tensors, metadata={"format": FORMAT, "tree": header})


def save_tree(tree: Any, fh: BinaryIO) -> None:
    fh.write(tree_bytes(tree))


def load_tree(path: str | Path) -> Any:
    """What ``save_tree`` wrote; a file in any other format (a pickle) is refused unread (``UnsafeFile``)."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    raw = Path(path).read_bytes()
    try:
        tensors = load(raw)
        meta = _metadata(raw)
    except (SafetensorError, ValueError, json.JSONDecodeError) as exc:
        raise UnsafeFile(f"{path} is not a safetensors file written by this pipeline (an old pickle?); "
                         "it is not loaded") from exc
    if meta.get("format") != FORMAT or "tree" not in meta:
        raise UnsafeFile(f"{path} is not a tree written by this pipeline; it is not loaded")
    return _decode(json.loads(meta["tree"]), tensors)


def _metadata(raw: bytes) -> dict[str, str]:
    """The ``__metadata__`` of safetensors bytes: an 8-byte little-endian length, then a JSON header."""
    if len(raw) < 8:
        raise ValueError("too short")
    n = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8:8 + n]).get("__metadata__", {}) or {}


# --- the scorer ------------------------------------------------------------------------------------------------

def scorer_tree(scorer) -> dict[str, Any]:
    """A ``RareEventScorer`` as tensors + JSON: its state dict, spec, evaluation and the network's config."""
    members = getattr(scorer, "networks", None)
    nets = list(members) if members is not None else [scorer.network]
    return {"kind": "RareEventScorer", "spec": dict(scorer.spec), "evaluation": dict(scorer.evaluation),
            "model": nets[0].cfg.model_dump(mode="json"), "n_features": int(nets[0].n_features),
            "members": len(nets) if members is not None else None,
            "state_dict": dict(scorer.state_dict())}


def scorer_from_tree(tree: dict[str, Any]):
    """Rebuild the ``RareEventScorer`` from ``scorer_tree``'s output: networks from ``lstm_core``, weights loaded
    strictly (a missing or unexpected tensor is an error)."""
    from lstm_core.config import ModelConfig
    from lstm_core.model import LEGACY_HEAD_STATS, LSTMClassifier
    from lstm_core.scoring import RareEventScorer, ScoringSpec

    # a network saved before head_stats existed read the three legacy statistics
    cfg = ModelConfig.model_validate({"head_stats": list(LEGACY_HEAD_STATS), **tree["model"]})
    n = int(tree["n_features"])
    members = tree.get("members")
    net = LSTMClassifier(n, cfg) if members is None else [LSTMClassifier(n, cfg) for _ in range(int(members))]
    state = tree["state_dict"]
    scorer = RareEventScorer(net, state["mean"].numpy(), state["scale"].numpy(), ScoringSpec(**tree["spec"]),
                             tree.get("evaluation") or {})
    scorer.load_state_dict(state, strict=True)
    return scorer.eval()


def is_scorer_tree(value: Any) -> bool:
    return isinstance(value, dict) and value.get("kind") == "RareEventScorer" and "state_dict" in value
