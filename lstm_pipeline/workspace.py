"""Heavy arrays travel between tasks as files named by their content hash; tasks pass only the URIs.

Equal content gives an equal name, so a retried or re-run stage finds what an earlier attempt wrote, and
the same URIs work on a shared filesystem when tasks run on other workers.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import numpy as np

from lstm_pipeline import settings


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
        # the array's own buffer, not a tobytes() copy: at 10M rows that copy is gigabytes
        h.update(value.reshape(-1).view(np.uint8) if value.dtype != object else repr(value.tolist()).encode())
    return h.hexdigest()[:24]


def _write_temp(directory: Path, write: Callable[[BinaryIO], object]) -> Path:
    """``write(fh)`` into a new temporary file in ``directory``; removed again if writing fails."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    # Write-then-rename: a crash never leaves a half-written file under a content hash.
    os.replace(_write_temp(path.parent, write), path)


def put_arrays(arrays: dict[str, np.ndarray], kind: str = "arrays") -> str:
    """Store named arrays as ``<workspace>/<kind>-<hash>.npz``; return its file URI."""
    path = settings.workspace_dir() / f"{kind}-{_digest(arrays)}.npz"
    if not path.exists():
        _atomic_write(path, lambda fh: np.savez(fh, **arrays))
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
    tmp = _write_temp(settings.workspace_dir(), write)
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
    """``lstm_core.train.Checkpointer`` on one file: torch.save to a temporary file, then an atomic rename."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def load(self) -> dict | None:
        import torch

        if not self.path.exists():
            return None
        try:  # our own file: it holds RNG states (numpy arrays, Python tuples), not only tensors
            return torch.load(self.path, map_location="cpu", weights_only=False)
        except Exception:  # unreadable (a disk filled up under it, say): train from the start instead
            return None

    def save(self, state: dict) -> None:
        import torch

        _atomic_write(self.path, lambda fh: torch.save(state, fh))

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
