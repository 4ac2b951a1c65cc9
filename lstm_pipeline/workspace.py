"""Heavy arrays travel between tasks as files named by their content hash; tasks pass only the URIs.

Equal content gives an equal name, so a retried or re-run stage finds what an earlier attempt wrote, and
the same URIs work on a shared filesystem when tasks run on other workers.
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import numpy as np

from lstm_pipeline import settings
from lstm_pipeline.safe_files import atomic_write, load_tree, save_tree, write_temp


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
        # the array's own buffer, not a tobytes() copy: at 10M rows that copy is gigabytes
        h.update(value.reshape(-1).view(np.uint8) if value.dtype != object else repr(value.tolist()).encode())
    return h.hexdigest()[:24]


def put_arrays(arrays: dict[str, np.ndarray], kind: str = "arrays") -> str:
    """Store named arrays as ``<workspace>/<kind>-<hash>.npz``; return its file URI."""
    objects = [k for k, v in arrays.items() if np.asarray(v).dtype == object]
    if objects:  # np.savez would pickle them, and get_arrays refuses to unpickle
        raise TypeError(f"arrays {objects} hold Python objects; store numbers or strings")
    path = settings.workspace_dir() / f"{kind}-{_digest(arrays)}.npz"
    if not path.exists():
        atomic_write(path, lambda fh: np.savez(fh, **arrays))
    return path.as_uri()


def get_arrays(uri: str) -> dict[str, np.ndarray]:
    """Load every array of an .npz URI into memory."""
    with np.load(uri_path(uri), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def get_array(uri: str, key: str) -> np.ndarray:
    """One array of an .npz URI (the others are not read)."""
    with np.load(uri_path(uri), allow_pickle=False) as data:
        return data[key]


def put_written(write: Callable[[BinaryIO], object], suffix: str, kind: str) -> str:
    """Store what ``write(fh)`` writes under the hash of those bytes, streamed: they are never all in memory."""
    tmp = write_temp(settings.workspace_dir(), write)
    h = hashlib.sha256()
    with open(tmp, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    path = settings.workspace_dir() / f"{kind}-{h.hexdigest()[:24]}{suffix}"
    if path.exists():
        tmp.unlink()
    else:
        os.replace(tmp, path)
    return path.as_uri()


def uri_path(uri: str) -> Path:
    parsed = urlparse(uri)
    return Path(parsed.path) if parsed.scheme == "file" else Path(uri)


def checkpoint_dir() -> Path:
    """Per-epoch training checkpoints, one file per fold (and balanced-bagging member) being trained."""
    return settings.home() / "checkpoints"


class FileCheckpointer:
    """``lstm_core.train.Checkpointer`` on one file: tensors + JSON (``safe_files``), written atomically.

    A checkpoint holds weights, optimiser and scheduler state and RNG states (tuples, small numpy arrays); all
    of it is stored as data, so loading one never unpickles.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict | None:
        if not self.path.exists():
            return None
        try:
            return load_tree(self.path)
        except Exception:  # unreadable, truncated or an old pickle: train from the start instead
            return None

    def save(self, state: dict) -> None:
        atomic_write(self.path, lambda fh: save_tree(state, fh))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
