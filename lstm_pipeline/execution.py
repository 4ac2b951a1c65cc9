"""How tasks execute: which Prefect task runner a run gets, and the memory a finished task gives back.

Flows are declared without a runner; the caller picks one per call from ``config.execution``:
``training_pipeline.with_options(task_runner=task_runner(cfg))(cfg)``.
"""
from __future__ import annotations

import ctypes
import functools
import gc
import os
import sys
from typing import Any

from lstm_core.config import PipelineConfig


def task_runner(cfg: PipelineConfig) -> Any:
    """The task runner ``cfg.execution`` asks for.

    local: one worker thread, so tasks run one after another (progress bars and CPU use as without Prefect).
    dask: an existing scheduler at ``dask_address``, else a LocalCluster of ``dask_workers`` processes.
    """
    ex = cfg.execution
    if ex.executor == "local":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=1)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as exc:  # pragma: no cover - prefect-dask is a main dependency
        raise RuntimeError("execution.executor=dask needs the prefect-dask package (pip install prefect-dask)") from exc
    if ex.dask_address:
        return DaskTaskRunner(address=ex.dask_address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": ex.dask_workers, "threads_per_worker": ex.threads_per_worker,
                        "processes": True, "dashboard_address": None},
    )


def torch_threads(configured: int | None) -> int:
    """The CPU threads torch gets in the train and evaluate stages: ``configured`` when set.

    Otherwise the CPUs this process may run on (its affinity, which a container's or ``taskset``'s pinning
    narrows; the machine's count where the platform has no affinity), capped by ``OMP_NUM_THREADS`` when that
    holds a positive integer: the variable a user sets to share the machine. Taking every core of a machine other
    jobs use makes each training step wait on threads that are not running.
    """
    if configured:
        return configured
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        cpus = min(cpus, int(omp))
    return max(1, cpus)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): its allocator is left alone
        return None


COLLECT_GROWTH_BYTES = 256 << 20  # a stage that left less than this on top of its start has no cycles worth a collection


def resident_bytes() -> int | None:
    """This process's resident size, or None where /proc does not tell it (not Linux)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def release_memory(collect: bool = True) -> None:
    """Give the memory a finished stage freed back to the operating system.

    Tasks run on worker threads, and glibc keeps what a thread frees in that thread's arena, fragmented by
    the few small objects that outlive the stage; Arrow's pool keeps freed blocks too. Without this the
    resident size of a long flow only grows: each stage's peak would sit on top of every earlier stage's
    garbage.

    With ``collect``, garbage in reference cycles is collected first. Python collects its oldest generation
    only when it has grown by a quarter, which in a process holding Prefect, MLflow and Great Expectations is
    rare: the data contract's GX objects form cycles that kept the validated table and its metrics (2 GB of a
    10M-row table) alive through the next stages, under the window stage's peak. A collection walks every
    object of the process (0.3-0.4 s with those libraries loaded), so a caller that releases often (after
    each column) passes ``collect=False``.
    """
    if collect:
        gc.collect()
    if "pyarrow" in sys.modules:  # pandas reads Parquet into Arrow memory, whose pool also keeps what is freed
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    if (trim := _malloc_trim()) is not None:
        trim(0)


def releases_memory(fn):
    """Decorate a task's function (beneath ``@task``) so that it releases memory when it returns or raises.

    A wrapper, not a Prefect state hook: Prefect logs every hook it runs at INFO, twice, which made up most of a
    run's log. Reference cycles are collected only after a stage that ends at least COLLECT_GROWTH_BYTES above
    the resident size it started at (or wherever that size is unknown): the small stages, most of a flow's,
    then skip a collection that could free little and costs a few tenths of a second each.
    """

    @functools.wraps(fn)
    def stage(*args: Any, **kwargs: Any) -> Any:
        start = resident_bytes()
        try:
            return fn(*args, **kwargs)
        finally:
            end = resident_bytes()
            release_memory(collect=start is None or end is None or end - start >= COLLECT_GROWTH_BYTES)

    return stage
