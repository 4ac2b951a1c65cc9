"""Retry and caching policies shared by the tasks."""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect.cache_policies import CachePolicy, TaskSource
from prefect.tasks import exponential_backoff

from lstm_core.data import DataError
from lstm_pipeline import data_roots, settings, workspace


def retry_unless_bad_input(task, task_run, state) -> bool:
    """Retry transient failures, never bad input: the same data fails the same way."""
    try:
        state.result()
    except (DataError, ValueError):  # ContractError is a ValueError too
        return False
    except Exception:
        return True
    return True


def _is_cuda_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError)


def retry_oom_or_transient(task, task_run, state) -> bool:
    """Retry a CUDA out-of-memory error on every attempt left (the train task halves its batch each time),
    any other transient failure once, and bad input never."""
    try:
        state.result()
    except (DataError, ValueError):
        return False
    except Exception as exc:
        if _is_cuda_oom(exc):
            import torch

            torch.cuda.empty_cache()  # give the failed attempt's blocks back before the smaller batch tries
            return True
        return task_run.run_count <= 1
    return True


IO_RETRY = {"retries": 3, "retry_delay_seconds": settings.RetryDelays(exponential_backoff(backoff_factor=2)(3)),
            "retry_jitter_factor": 0.5, "retry_condition_fn": retry_unless_bad_input}
COMPUTE_RETRY = {"retries": 1, "retry_delay_seconds": 1, "retry_condition_fn": retry_unless_bad_input}
# Three halvings: batch_size, /2, /4, /8.
TRAIN_RETRY = {"retries": 3, "retry_delay_seconds": 0, "retry_condition_fn": retry_oom_or_transient}


# The packages a stage's result can depend on besides its inputs: the pure core, the infrastructure that stores
# and reads its files, and the tasks themselves (one task calls another's helpers). Read from the installed
# files, so the digest is the same on a remote Dask worker, where a function's source may not be found.
CODE_PACKAGES = ("lstm_core", "lstm_pipeline", "tasks")


@functools.lru_cache(maxsize=1)
def _library_digest() -> str:
    """sha256 over the source of every module in ``CODE_PACKAGES``: any change in them invalidates every cached
    stage (a stale result is worse than a recomputed one)."""
    import importlib

    h = hashlib.sha256()
    for package in CODE_PACKAGES:
        root = Path(importlib.import_module(package).__file__).parent
        for path in sorted(root.rglob("*.py")):
            h.update(str(path.relative_to(root.parent)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def _file_uris(value: Any) -> list[str]:
    """Every workspace URI inside a task result (nested dicts and lists)."""
    if isinstance(value, str):
        return [value] if value.startswith("file://") else []
    if isinstance(value, dict):
        return [u for v in value.values() for u in _file_uris(v)]
    if isinstance(value, (list, tuple)):
        return [u for v in value for u in _file_uris(v)]
    return []


def _plain(value: Any) -> bool:
    """True when a JSON value holds no object Prefect's JSON decoder would import and build (``__class__``)."""
    if isinstance(value, dict):
        return not ({"__class__", "__exc_type__"} & value.keys()) and all(_plain(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return True


def _raw_record(store, key: str) -> tuple[dict, str] | None:
    """The serializer a stored record names and its serialised result, read as bytes (nothing is decoded);
    None when nothing readable is stored under ``key`` (Prefect's own read would find nothing either)."""
    from prefect._internal.compatibility.blocks import call_explicitly_sync_block_method
    from prefect.results import get_default_result_storage

    storage = store.result_storage or get_default_result_storage(_sync=True)
    try:
        raw = call_explicitly_sync_block_method(store.metadata_storage or storage, "read_path", (key,), {})
    except Exception:  # absent
        return None
    if raw is None:
        return None
    record = json.loads(raw)
    if store.metadata_storage is not None:
        content = call_explicitly_sync_block_method(storage, "read_path", (record["storage_key"],), {})
        return record["serializer"], content.decode()
    return record["metadata"]["serializer"], record["result"]


def _safe_record(record: tuple[dict, str]) -> bool:
    """True when a stored record was written by ``cached``'s JSON serializer and holds plain JSON.

    Prefect decodes a stored record with the serializer the record itself names, even to check that it exists:
    a record planted in a shared result folder naming 'pickle', or a JSON decoder of its choice, would run code
    on the next cache lookup. So a record is read as bytes and checked here before Prefect sees its key.
    """
    from prefect.serializers import JSONSerializer

    serializer, result = record
    return serializer == JSONSerializer().model_dump(mode="json") and _plain(json.loads(result))


def _intact(store, key: str) -> bool:
    """True when no result is stored under ``key``, or the stored one is safe to decode (``_safe_record``) and
    points only at workspace files whose bytes still match their hash (``workspace.intact``). A record cut
    short is not JSON and fails the first check. Never calls Prefect's ``exists``/``read`` on an unchecked record."""
    try:
        record = _raw_record(store, key)
        safe = record is None or _safe_record(record)
    except Exception:  # not JSON at all (a bare pickle, say), or not a record
        record, safe = None, False
    if not safe:
        logging.getLogger(__name__).warning("cached result %s is not a plain JSON record: not read, the stage "
                                            "runs again", key)
        return False
    if record is None:
        return True
    try:
        value = store.read(key).result
    except Exception:  # unreadable record: let Prefect overwrite it
        return True
    return all(workspace.intact(u) for u in _file_uris(value))


@dataclass
class StageCache(CachePolicy):
    """Prefect's cache policy for a stage that reads the config sections ``sections``.

    The key is sha256 of: the task's source (Prefect's ``TaskSource``, which travels with the task to a Dask
    worker), the source of every package a stage runs (``_library_digest``), the pipeline home, the JSON of
    those config sections, and every other input (URIs of content-hashed workspace files, fingerprints, fold
    numbers). With ``data_file`` the user's file's path, size and modification time go in too (the load stage
    has no fingerprint yet). When the result stored under a key points at a workspace file that is gone or
    damaged, or the record itself is not intact, the key moves on (``key-1``, ``key-2``...) so the stage runs
    again instead of handing on a dangling URI or a corrupt file.
    """

    sections: tuple[str, ...] = ()
    data_file: bool = False

    def compute_key(self, task_ctx, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        if task_ctx is None:
            return None
        config = inputs["config"]
        file = None
        if self.data_file:
            try:  # a path outside the data roots is not even looked at: the load stage refuses it in one line
                stat = os.stat(data_roots.check(config.data.path, "data file"))
            except (OSError, DataError):
                return None
            file = [str(Path(config.data.path).resolve()), stat.st_size, stat.st_mtime_ns]
        tree = config.model_dump(mode="json")
        parts: dict[str, Any] = {
            "code": TaskSource().compute_key(task_ctx, inputs, flow_parameters), "library": _library_digest(),
            "home": str(settings.home()), "config": {s: tree[s] for s in self.sections},
            "inputs": {k: v for k, v in inputs.items() if k != "config"}, "file": file,
        }
        base = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
        for attempt in range(16):
            candidate = base if attempt == 0 else f"{base}-{attempt}"
            if _intact(task_ctx.result_store, candidate):
                return candidate
        return None  # no caching rather than a stale result


def cached(*sections: str, data_file: bool = False) -> dict[str, Any]:
    """Task options that cache a stage on its inputs, its config sections and its code (``StageCache``),
    persisted under home as JSON (never a pickle: the results are URIs and small dicts)."""
    return {"cache_policy": StageCache(sections=sections, data_file=data_file), "persist_result": True,
            "result_serializer": "json"}
