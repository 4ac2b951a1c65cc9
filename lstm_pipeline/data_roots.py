"""Deployments read and write only under configured data roots.

``LSTM_PIPELINE_DATA_ROOTS`` lists folders separated by ``os.pathsep`` (``:`` on Linux). When it is set, a data
file a flow reads and a file it writes must resolve (symlinks followed, ``..`` collapsed, relative paths taken
from the working folder) to a place inside one of them; anything else is refused before it is opened, in one
line naming the path and the roots. Unset or empty: no restriction, the CLI on one's own machine.

This keeps a deployment parameter typed in the dashboard from reading the worker's own files (its code, its
environment under ``/proc``) or writing over them.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from lstm_core.data import DataError

ENV_VAR = "LSTM_PIPELINE_DATA_ROOTS"


class OutsideDataRoots(DataError):
    """A path that resolves outside every data root (a ValueError: bad input, never retried)."""

    def __init__(self, path: str | os.PathLike, resolved: Path, roots: tuple[Path, ...], purpose: str):
        self.path, self.resolved, self.roots = path, resolved, roots
        where = "" if str(path) == str(resolved) else f" (resolves to {resolved})"
        super().__init__(f"{purpose} {path}{where} is outside the data roots {os.pathsep.join(map(str, roots))} "
                         f"({ENV_VAR}); put the file under one of them or change the path")


def parse_roots(value: str | None) -> tuple[Path, ...]:
    """The roots in ``value`` (``os.pathsep``-separated), each resolved; empty entries are skipped.

    A relative root is refused: what it means would depend on the folder the worker starts in.
    """
    roots = []
    for entry in (value or "").split(os.pathsep):
        entry = entry.strip()
        if not entry:
            continue
        if not os.path.isabs(entry):
            raise ValueError(f"{ENV_VAR}: {entry!r} is not an absolute folder")
        roots.append(Path(os.path.realpath(entry)))
    return tuple(roots)


def resolve(path: str | os.PathLike) -> Path:
    """``path`` with every symlink followed and ``..`` collapsed; the file itself need not exist yet."""
    return Path(os.path.realpath(os.fspath(path)))


def inside(resolved: Path, roots: tuple[Path, ...]) -> bool:
    """Whether an already resolved path is one of ``roots`` or below one (whole components: /data2 is not in /data)."""
    return any(resolved.is_relative_to(root) for root in roots)


def confine(path: str | os.PathLike, roots: tuple[Path, ...], purpose: str = "path") -> Path:
    """The resolved ``path`` when it lies inside one of ``roots``; OutsideDataRoots otherwise.

    Use the returned path to open the file, so a symlink swapped after the check cannot lead elsewhere.
    """
    resolved = resolve(path)
    if not inside(resolved, roots):
        raise OutsideDataRoots(path, resolved, roots, purpose)
    return resolved


def roots_from_env(environ: Mapping[str, str] | None = None) -> tuple[Path, ...]:
    """The roots ``LSTM_PIPELINE_DATA_ROOTS`` names (``os.environ`` by default); () when unset or empty."""
    return parse_roots((os.environ if environ is None else environ).get(ENV_VAR))


def check(path: str | os.PathLike, purpose: str, environ: Mapping[str, str] | None = None) -> str | os.PathLike:
    """``path`` unchanged when no roots are configured, else ``confine(path, roots, purpose)``."""
    roots = roots_from_env(environ)
    return confine(path, roots, purpose) if roots else path
