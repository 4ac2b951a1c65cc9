"""Workspace files: named by content, written whole or not at all, never built in memory first."""
from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect import Task

from lstm_pipeline import artifacts, workspace


def _parts(home) -> list:
    return sorted(p.name for p in home.rglob("*.part"))


def test_equal_content_gives_the_same_file(home):
    rng = np.random.default_rng(0)
    arrays = {"rows": rng.normal(size=(50, 3)).astype(np.float32), "names": np.array(["a", "bc"]),
              "n": np.array(7)}
    first = workspace.put_arrays(arrays, "series")
    again = workspace.put_arrays({k: v.copy() for k, v in arrays.items()}, "series")
    assert first == again
    back = workspace.get_arrays(first)
    assert set(back) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(back[key], value)
    changed = workspace.put_arrays({**arrays, "n": np.array(8)}, "series")
    assert changed != first


def test_a_strided_array_hashes_like_its_contiguous_copy(home):
    base = np.arange(40, dtype=np.float64).reshape(8, 5)
    assert workspace.put_arrays({"a": base[:, 1:3]}) == workspace.put_arrays({"a": np.ascontiguousarray(base[:, 1:3])})


def test_written_files_are_named_by_the_hash_of_their_bytes(home):
    payload = b"x" * (9 << 20)  # over two read chunks
    uri = workspace.put_written(lambda fh: fh.write(payload), ".bin", "blob")
    path = workspace.uri_path(uri)
    assert path.name == f"blob-{hashlib.sha256(payload).hexdigest()[:24]}.bin"
    assert path.read_bytes() == payload
    assert workspace.put_written(lambda fh: fh.write(payload), ".bin", "blob") == uri
    assert _parts(home) == []


def test_a_failed_write_leaves_nothing_behind(home):
    def broken(fh):
        fh.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        workspace.put_written(broken, ".bin", "blob")
    with pytest.raises(OSError, match="disk full"):
        workspace.atomic_write(home / "ws" / "x.npz", broken)
    assert [p for p in home.rglob("*") if p.is_file()] == []


def test_a_table_round_trips_and_the_callers_frame_is_untouched(home):
    frame = pd.DataFrame({"machine": pd.Series(["m0", None, "m1"], dtype=object), "temp": [1.0, 2.0, np.nan]})
    before = frame.copy()
    uri = artifacts.put_table(frame)
    pd.testing.assert_frame_equal(frame, before)
    back = artifacts.get_table(uri)
    assert back["machine"].isna().tolist() == [False, True, False]
    assert back["machine"].dropna().tolist() == ["m0", "m1"]
    np.testing.assert_array_equal(back["temp"].to_numpy(), frame["temp"].to_numpy())
    assert artifacts.put_table(frame.copy()) == uri


RELEASE_PROBE = """
import gc, threading, numpy as np
from lstm_pipeline.execution import release_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

{stage}
before = rss_mb()
release_memory()
print(before, rss_mb())
"""

FRAGMENTED = """
keep = []
def stage():  # 250 MB in 64 KB blocks, each followed by a small survivor: freed, but fragmented
    blocks = []
    for _ in range(4000):
        blocks.append(np.ones(8192))
        keep.append(np.ones(4))

worker = threading.Thread(target=stage)
worker.start()
worker.join()
"""

IN_A_CYCLE = """
gc.disable()  # as in a large process, where the oldest generation is seldom collected on its own
def stage():  # 200 MB reachable only from a reference cycle, as a GX context's batch is
    node = {"rows": np.ones(25_000_000)}
    node["self"] = node

stage()
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux)")
@pytest.mark.parametrize("stage", [FRAGMENTED, IN_A_CYCLE], ids=["freed-but-fragmented", "held-by-a-cycle"])
def test_a_finished_stage_gives_its_memory_back(stage: str):
    probe = RELEASE_PROBE.replace("{stage}", stage)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    before, after = map(float, out.stdout.split())
    assert before - after > 150, (before, after)


def test_every_stage_releases_memory_when_it_ends(monkeypatch):
    import importlib
    import pkgutil

    import tasks
    from lstm_pipeline import execution

    found = []
    for info in pkgutil.iter_modules(tasks.__path__):
        module = importlib.import_module(f"tasks.{info.name}")
        found += [t for t in vars(module).values() if isinstance(t, Task) and t.fn.__module__ == module.__name__]
    assert len(found) > 20
    wrapper = execution.releases_memory(lambda: None).__code__  # every wrapped function runs this code
    for t in found:
        assert t.fn.__code__ is wrapper, t.name
        assert not t.on_completion_hooks, t.name  # Prefect logs each hook it runs at INFO: none are used

    calls = []
    monkeypatch.setattr(execution, "release_memory", lambda collect: calls.append(collect))
    sizes = iter([100 << 20, 110 << 20, 100 << 20, 400 << 20, None, 5 << 20])  # resident bytes at start, end

    @execution.releases_memory
    def stage(fail: bool) -> int:
        if fail:
            raise RuntimeError("boom")
        return 7

    monkeypatch.setattr(execution, "resident_bytes", lambda: next(sizes))
    assert stage(False) == 7 and calls == [False]  # 10 MB more than at its start: no collection
    with pytest.raises(RuntimeError, match="boom"):
        stage(True)
    assert calls == [False, True]  # 300 MB more: reference cycles are collected, and on failure too
    assert stage(False) == 7 and calls == [False, True, True]  # size unknown (no /proc): always collected


def _windows(rows: np.ndarray, ends: list[int], length: int = 3):
    from lstm_core.windows import WindowSet

    n = len(ends)
    return WindowSet(rows, np.array(ends, np.int64), length, np.array([0, 1] * (n // 2) + [0] * (n % 2), np.int8),
                     np.zeros(n, np.int8), np.zeros(n, bool))


def test_windows_over_a_folds_rows_reference_them_instead_of_storing_them_again(home):
    rows = np.arange(60, dtype=np.float32).reshape(20, 3)
    fold_uri = artifacts.put_windowsets({"train": _windows(rows, [2, 3, 4, 5]), "val": _windows(rows, [9, 10])},
                                        "fold")
    redrawn = _windows(rows, [2, 3, 3, 5])  # random oversampling: a window drawn twice, the same rows
    train_uri = artifacts.put_windowsets({"train": redrawn}, "train", rows_from=fold_uri)
    stored = workspace.get_arrays(train_uri)
    assert "rows" not in stored and str(stored["rows_from"]) == fold_uri

    alone = artifacts.get_windowsets(train_uri)[0]["train"]  # nothing held: the rows come from the fold file
    np.testing.assert_array_equal(alone.rows, rows)
    np.testing.assert_array_equal(alone.gather(), redrawn.gather())

    val = artifacts.get_windowsets(fold_uri)[0]["val"]
    shared = artifacts.get_windowsets(train_uri, held={fold_uri: val.rows})[0]["train"]
    assert shared.rows is val.rows  # one copy of the rows in memory for training and validation
    np.testing.assert_array_equal(shared.gather(), redrawn.gather())
    assert artifacts.get_windowsets(train_uri)[1] == {}  # the reference is not an extra array


def test_window_sets_read_mapped_gather_like_ones_read_whole_and_their_rows_are_read_only(home):
    rows = np.random.default_rng(5).normal(size=(70_000, 4)).astype(np.float32)  # 1.1 MB: mapped
    fold_uri = artifacts.put_windowsets({"train": _windows(rows, [9, 10, 500]), "test": _windows(rows, [69_999])},
                                        "fold")
    train_uri = artifacts.put_windowsets({"train": _windows(rows, [9, 9, 40_000])}, "train", rows_from=fold_uri)
    for uri in (fold_uri, train_uri):  # rows stored in the file, and rows referenced from another
        whole, mapped = artifacts.get_windowsets(uri)[0], artifacts.get_windowsets(uri, mmap=True)[0]
        assert set(mapped) == set(whole)
        for name, ws in mapped.items():
            assert not ws.rows.flags.writeable and whole[name].rows.flags.writeable
            np.testing.assert_array_equal(ws.gather(), whole[name].gather())
            np.testing.assert_array_equal(ws.y, whole[name].y)
            np.testing.assert_array_equal(ws.ends, whole[name].ends)


def test_the_head_of_a_table_is_read_alone_with_the_same_types(home):
    frame = pd.DataFrame({"machine": pd.Series([f"m{i % 3}" for i in range(50)], dtype=object),
                          "time": pd.date_range("2024-01-01", periods=50, freq="h"), "temp": np.arange(50.0)})
    uri = artifacts.put_table(frame)
    whole = artifacts.get_table(uri)
    head = artifacts.get_table_head(uri, 7)
    pd.testing.assert_frame_equal(head, whole.head(7))
    pd.testing.assert_frame_equal(artifacts.get_table_head(uri, 500), whole)


def test_memory_mapped_arrays_equal_the_stored_ones_and_are_read_only(home):
    rng = np.random.default_rng(2)
    arrays = {"rows": rng.normal(size=(70_000, 4)).astype(np.float32),  # 1.1 MB: mapped
              "fortran": np.asfortranarray(rng.normal(size=(400, 400))),  # 1.3 MB, column-major: mapped
              "ends": np.arange(10, dtype=np.int64), "meta": np.array('{"a": 1}')}  # small: read
    uri = workspace.put_arrays(arrays, "series")
    mapped = workspace.get_arrays(uri, mmap=True)
    assert set(mapped) == set(arrays)
    for key, value in arrays.items():
        np.testing.assert_array_equal(mapped[key], value)
        assert mapped[key].dtype == value.dtype and type(mapped[key]) is np.ndarray
    assert not mapped["rows"].flags.writeable and not mapped["fortran"].flags.writeable
    assert mapped["ends"].flags.writeable  # read into memory like any small array
    assert workspace.get_arrays(uri)["rows"].flags.writeable  # the default still reads a private copy
    with pytest.raises(ValueError, match="read-only"):
        mapped["rows"][0, 0] = 1.0


def test_a_series_read_memory_mapped_splits_like_one_read_whole(home):
    from lstm_core.config import DataConfig, SplitConfig
    from lstm_core.data import resolve_spec, to_series
    from lstm_core.splits import make_folds
    from lstm_core.windows import make_windows

    n = 80_000  # features of 80k × 4 float32 (1.3 MB): mapped
    rng = np.random.default_rng(4)
    df = pd.DataFrame({"t": np.arange(n), **{f"f{i}": rng.normal(size=n) for i in range(4)},
                       "y": (rng.random(n) < 0.05).astype(int)})
    series = to_series(df, resolve_spec(df, DataConfig(time_col="t", label_col="y")))
    uri = artifacts.put_series(series, make_windows(series, 8))
    whole, whole_index = artifacts.get_series(uri)
    mapped, mapped_index = artifacts.get_series(uri, mmap=True)
    assert not mapped.features.flags.writeable
    np.testing.assert_array_equal(mapped.features, whole.features)
    cfg = SplitConfig(folds=2)
    for a, b in zip(make_folds(whole, whole_index, cfg), make_folds(mapped, mapped_index, cfg), strict=True):
        for part in ("train", "val", "test", "calib"):
            np.testing.assert_array_equal(getattr(a, part), getattr(b, part))


def test_stored_tables_read_back_equal_and_one_block_per_column(home):
    df = pd.DataFrame({"t": np.arange(5), "a": np.linspace(0, 1, 5, dtype=np.float32), "b": np.arange(5.0),
                       "s": ["x", None, "y", "z", "x"], "y": [0, 1, 0, 0, 1]})
    back = artifacts.get_table(artifacts.put_table(df))
    pd.testing.assert_frame_equal(back, pd.read_parquet(workspace.uri_path(artifacts.put_table(df))))
    assert back._mgr.nblocks == back.shape[1]  # no consolidated 2-D copy beside the Arrow columns
