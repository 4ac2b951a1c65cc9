"""Heavy arrays travel between tasks as files named by their content hash; tasks pass only the URIs.

Equal content gives an equal name, so a retried or re-run stage finds what an earlier attempt wrote, and
the same URIs work on a shared filesystem when tasks run on other workers.
"""
from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from lstm_pipeline import settings


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
        h.update(value.tobytes() if value.dtype != object else repr(value.tolist()).encode())
    return h.hexdigest()[:24]


def _atomic_write(path: Path, payload: bytes) -> None:
    # Write-then-rename: a crash never leaves a half-written file under a content hash.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
    os.replace(tmp, path)


def put_arrays(arrays: dict[str, np.ndarray], kind: str = "arrays") -> str:
    """Store named arrays as ``<workspace>/<kind>-<hash>.npz``; return its file URI."""
    path = settings.workspace_dir() / f"{kind}-{_digest(arrays)}.npz"
    if not path.exists():
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        _atomic_write(path, buffer.getvalue())
    return path.as_uri()


def get_arrays(uri: str) -> dict[str, np.ndarray]:
    """Load every array of an .npz URI into memory."""
    with np.load(uri_path(uri), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def put_bytes(payload: bytes, suffix: str, kind: str) -> str:
    """Store opaque bytes (a torch checkpoint, say) under their hash."""
    path = settings.workspace_dir() / f"{kind}-{hashlib.sha256(payload).hexdigest()[:24]}{suffix}"
    if not path.exists():
        _atomic_write(path, payload)
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

        buffer = io.BytesIO()
        torch.save(state, buffer)
        _atomic_write(self.path, buffer.getvalue())

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)
