"""A hook through which long stages report progress (folds, epochs) to whoever listens, e.g. the CLI."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

Reporter = Callable[[str, dict[str, Any]], None]
_reporter: Reporter | None = None


def set_reporter(reporter: Reporter | None) -> None:
    """Install (or remove, with None) the listener; entry points call this, never an import."""
    global _reporter
    _reporter = reporter


def report(event: str, **fields: Any) -> None:
    if _reporter is not None:
        _reporter(event, fields)
