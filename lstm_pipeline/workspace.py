"""Heavy arrays travel between tasks as files named by their content hash; tasks pass only the URIs.

Equal content gives an equal name, so a retried or re-run stage finds what an earlier attempt wrote, and
the same URIs work on a shared filesystem when tasks run on other workers. Every file's bytes can be checked
(``intact``): a file written as bytes is named by their sha256, and an ``.npz`` (named by its arrays, because
zip entries carry a write time) keeps the sha256 of its bytes beside it in ``<name>.sha256``.
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
from lstm_pipeline.safe_files import atomic_write, load_tree, save_tree, sha256_file, write_temp

_HASH_CHARS = 24


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        value = np.ascontiguousarray(arrays[key])
        h.update(f"{key}:{value.dtype.str}:{value.shape}".encode())
        # the array's own buffer, not a tobytes() copy: at 10M rows that copy is gigabytes
        h.update(value.reshape(-1).view(np.uint8) if value.dtype != object else repr(value.tolist()).encode())
    return h.hexdigest()[:_HASH_CHARS]


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def put_arrays(arrays: dict[str, np.ndarray], kind: str = "arrays") -> str:
    """Store named arrays as ``<workspace>/<kind>-<hash>.npz``; return its file URI."""
    objects = [k for k, v in arrays.items() if np.asarray(v).dtype == object]
    if objects:  # np.savez would pickle them, and get_arrays refuses to unpickle
        raise TypeError(f"arrays {objects} hold Python objects; store numbers or strings")
    path = settings.workspace_dir() / f"{kind}-{_digest(arrays)}.npz"
    if not intact(path.as_uri()):  # absent, or damaged on disk: written again, then its bytes' hash beside it
        atomic_write(path, lambda fh: np.savez(fh, **arrays))
        atomic_write(_sidecar(path), sha256_file(path))
        _verified.pop(path, None)
    return path.as_uri()


def get_arrays(uri: str, mmap: bool = False) -> dict[str, np.ndarray]:
    """Load every array of an .npz URI into memory.

    ``mmap=True`` maps the large arrays read-only from the file instead: a stage that reads a few of their
    rows, or none, costs only the pages it touches. Arrays stored compressed are read as usual."""
    path = uri_path(uri)
    with np.load(path, allow_pickle=False) as data:
        if not mmap:
            return {key: data[key] for key in data.files}
        mapped = _mapped_members(path)
        return {key: mapped[key] if key in mapped else data[key] for key in data.files}


MMAP_MIN_BYTES = 1 << 20  # smaller arrays are read: a mapping costs at least a page and a file handle


def _mapped_members(path: Path) -> dict[str, np.ndarray]:
    """Read-only memory maps of the stored (uncompressed) ``.npy`` members of an ``.npz`` at least MMAP_MIN_BYTES."""
    import zipfile

    out: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as fh:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                continue
            fh.seek(info.header_offset)
            local = fh.read(30)  # the local file header: its name and extra field lengths can differ from the directory's
            start = info.header_offset + 30 + int.from_bytes(local[26:28], "little") + int.from_bytes(local[28:30], "little")
            fh.seek(start)
            read_header = _HEADER_READERS.get(np.lib.format.read_magic(fh))
            if read_header is None:
                continue
            shape, fortran, dtype = read_header(fh)
            if dtype.hasobject or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize < MMAP_MIN_BYTES:
                continue
            mapped = np.memmap(path, dtype=dtype, mode="r", offset=fh.tell(), shape=shape, order="F" if fortran else "C")
            out[info.filename[:-4]] = mapped.view(np.ndarray)  # a plain read-only array; the view keeps the map open
    return out


_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def get_array(uri: str, key: str, mmap: bool = False) -> np.ndarray:
    """One array of an .npz URI (the others are not read); ``mmap=True`` maps it read-only as ``get_arrays``
    does."""
    if mmap:
        mapped = _mapped_members(uri_path(uri))
        if key in mapped:
            return mapped[key]
    with np.load(uri_path(uri), allow_pickle=False) as data:
        return data[key]


def put_written(write: Callable[[BinaryIO], object], suffix: str, kind: str) -> str:
    """Store what ``write(fh)`` writes under the hash of those bytes, streamed: they are never all in memory."""
    tmp = write_temp(settings.workspace_dir(), write)
    h = hashlib.sha256()
    with open(tmp, "rb") as fh:
        while chunk := fh.read(1 << 22):
            h.update(chunk)
    path = settings.workspace_dir() / f"{kind}-{h.hexdigest()[:_HASH_CHARS]}{suffix}"
    if intact(path.as_uri()):
        tmp.unlink()
    else:
        os.replace(tmp, path)
        _verified.pop(path, None)
    return path.as_uri()


# (path) -> (size, mtime_ns) of the last state whose bytes matched: a file is hashed once per change, not on
# every cache lookup that names it (at 10M rows a windows file is gigabytes).
_verified: dict[Path, tuple[int, int]] = {}


def intact(uri: str) -> bool:
    """True when the workspace file exists and its bytes still hash to what was recorded when it was written:
    a file cut short or damaged on disk is not handed to the next stage (its stage runs again instead).
    A file outside the workspace only has to exist."""
    path = uri_path(uri)
    try:
        stat = path.stat()
    except OSError:
        return False
    if path.parent != settings.workspace_dir():  # a file this module did not write (a run's artifact): it exists
        return True
    if _verified.get(path) == (stat.st_size, stat.st_mtime_ns):
        return True
    if path.suffix == ".npz":
        try:
            expected = _sidecar(path).read_text().strip()
        except OSError:  # written before its hash was kept, or the hash file is gone: not trusted
            return False
        good = sha256_file(path) == expected
    else:
        good = sha256_file(path)[:_HASH_CHARS] == path.stem.rsplit("-", 1)[-1]
    if good:
        _verified[path] = (stat.st_size, stat.st_mtime_ns)
    return good


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
