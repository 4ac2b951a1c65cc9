"""Reading the bundled gzip files, checked against the sha256 of the original bytes."""
from __future__ import annotations

import gzip
import hashlib
from importlib.resources import files


def read_bundled(name: str, expected_sha256: str) -> bytes:
    """Return a bundled file's decompressed bytes, refusing them if their sha256 is not the recorded one."""
    raw = gzip.decompress((files("lstm_core.datasets") / "data" / name).read_bytes())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected_sha256:
        raise RuntimeError(
            f"bundled data file {name!r} is corrupted: sha256 of its decompressed bytes is {digest}, "
            f"expected {expected_sha256}; reinstall the package"
        )
    return raw
