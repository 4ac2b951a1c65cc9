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


TRIM_PROBE = """
import threading, numpy as np
from lstm_pipeline.execution import release_memory

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20

keep = []
def stage():  # 250 MB in 64 KB blocks, each followed by a small survivor: freed, but fragmented
    blocks = []
    for _ in range(4000):
        blocks.append(np.ones(8192))
        keep.append(np.ones(4))

worker = threading.Thread(target=stage)
worker.start()
worker.join()
before = rss_mb()
release_memory()
print(before, rss_mb())
"""


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux)")
def test_a_finished_stage_gives_its_freed_memory_back():
    out = subprocess.run([sys.executable, "-c", TRIM_PROBE], capture_output=True, text=True, check=True)
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
    monkeypatch.setattr(execution, "release_memory", lambda: calls.append(1))

    @execution.releases_memory
    def stage(fail: bool) -> int:
        if fail:
            raise RuntimeError("boom")
        return 7

    assert stage(False) == 7 and calls == [1]
    with pytest.raises(RuntimeError, match="boom"):
        stage(True)
    assert calls == [1, 1]


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


def test_the_head_of_a_table_is_read_alone_with_the_same_types(home):
    frame = pd.DataFrame({"machine": pd.Series([f"m{i % 3}" for i in range(50)], dtype=object),
                          "time": pd.date_range("2024-01-01", periods=50, freq="h"), "temp": np.arange(50.0)})
    uri = artifacts.put_table(frame)
    whole = artifacts.get_table(uri)
    head = artifacts.get_table_head(uri, 7)
    pd.testing.assert_frame_equal(head, whole.head(7))
    pd.testing.assert_frame_equal(artifacts.get_table_head(uri, 500), whole)
