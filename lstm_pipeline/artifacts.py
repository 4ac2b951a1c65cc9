"""Serialise the pipeline's intermediate objects to workspace files and back: Parquet, .npz and safetensors.

Nothing here unpickles: arrays load with ``allow_pickle=False``, models and training results are tensors plus
JSON (``safe_files``), so a file planted in a shared workspace cannot run code in the task that reads it.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from lstm_core.data import Series, read_parquet
from lstm_core.splits import Fold
from lstm_core.windows import WindowIndex, WindowSet
from lstm_pipeline import safe_files, workspace

PARTS = ("train", "val", "test", "calib")


def put_table(df: pd.DataFrame) -> str:
    """The columns the pipeline uses, as Parquet (text-typed object columns keep their missing values)."""
    frame = df.copy(deep=False)  # replacing a column below never touches the caller's frame
    # pandas 3 reads text as 'str'; pandas 2 as 'object'. Both become nullable strings for Parquet.
    for col in frame.columns[[pd.api.types.is_object_dtype(t) or pd.api.types.is_string_dtype(t)
                              for t in frame.dtypes]]:
        frame[col] = frame[col].astype("string")
    # straight to a file: at 10M rows the Parquet bytes held in memory were another gigabyte and a half
    return workspace.put_written(lambda fh: frame.to_parquet(fh, index=False), ".parquet", "table")


def get_table(uri: str) -> pd.DataFrame:
    """The stored table, read a group of columns at a time (``read_parquet``: never the Arrow table and the
    frame whole side by side)."""
    return read_parquet(workspace.uri_path(uri))


def get_table_head(uri: str, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows of a stored table; the rest of the file is not read."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with pq.ParquetFile(workspace.uri_path(uri)) as f:
        batch = next(f.iter_batches(batch_size=rows), None)
        table = pa.Table.from_batches([batch]) if batch is not None else f.schema_arrow.empty_table()
    return table.to_pandas()


def put_series(series: Series, index: WindowIndex) -> str:
    arrays = {**series.to_arrays(), **{f"index_{k}": v for k, v in index.__dict__.items()}}
    return workspace.put_arrays(arrays, "series")


def get_series(uri: str, mmap: bool = False) -> tuple[Series, WindowIndex]:
    """The series and its window index; ``mmap=True`` maps the large arrays read-only instead of reading them
    (for a stage that reads few of the rows: splitting never touches the features)."""
    arrays = workspace.get_arrays(uri, mmap=mmap)
    index = WindowIndex(**{k[6:]: v for k, v in arrays.items() if k.startswith("index_")})
    return Series.from_arrays({k: v for k, v in arrays.items() if not k.startswith("index_")}), index


def put_folds(folds: list[Fold]) -> str:
    arrays = {f"{p}_{f.k}": getattr(f, p) for f in folds for p in PARTS}
    arrays["meta"] = np.array(json.dumps([{"k": f.k, "purged": f.purged, "bounds": f.bounds} for f in folds]))
    return workspace.put_arrays(arrays, "folds")


def get_fold(uri: str, k: int) -> Fold:
    arrays = workspace.get_arrays(uri)
    meta = next(m for m in json.loads(str(arrays["meta"])) if m["k"] == k)
    parts = {p: arrays[f"{p}_{k}"] for p in PARTS if f"{p}_{k}" in arrays}  # folds stored before calib had none
    return Fold(k, **parts, purged=meta["purged"], bounds=meta["bounds"])


def put_windowsets(sets: dict[str, WindowSet], kind: str, rows_from: str | None = None, **extra: np.ndarray) -> str:
    """Window sets sharing one row array (a fold's parts) in one file; rows are stored once.

    ``rows_from`` names a window-set file that already holds these rows (a fold, for the training windows a
    resampler only re-drew): the rows are then referenced, not written again.
    """
    first = next(iter(sets.values()))
    arrays: dict[str, np.ndarray] = {"length": np.array(first.length), **extra}
    arrays.update({"rows": first.rows} if rows_from is None else {"rows_from": np.array(rows_from)})
    for name, ws in sets.items():
        if ws.rows is not first.rows:
            raise ValueError("put_windowsets stores window sets over one shared row array")
        arrays.update({f"{name}_ends": ws.ends, f"{name}_y": ws.y, f"{name}_last_seen": ws.last_seen,
                       f"{name}_synthetic": ws.synthetic})
    return workspace.put_arrays(arrays, kind)


def get_windowsets(uri: str, held: dict[str, np.ndarray] | None = None, mmap: bool = False
                   ) -> tuple[dict[str, WindowSet], dict[str, np.ndarray]]:
    """The window sets of a file and its extra arrays. ``held`` maps file URIs to rows the caller has
    already loaded from them, so referenced rows are shared instead of loaded a second time.

    ``mmap=True`` maps the rows (and any other large array) read-only instead of reading them, for a stage that
    only reads windows: it then holds only the pages of the rows its windows cover, and those as page cache the
    system can reclaim, not as the task's own memory."""
    arrays = workspace.get_arrays(uri, mmap=mmap)
    if "rows_from" in arrays:
        source = str(arrays.pop("rows_from"))
        arrays["rows"] = (held or {}).get(source)
        if arrays["rows"] is None:
            arrays["rows"] = workspace.get_array(source, "rows", mmap=mmap)
    names = sorted({k[:-5] for k in arrays if k.endswith("_ends")})
    sets = {n: WindowSet(arrays["rows"], arrays[f"{n}_ends"], int(arrays["length"]), arrays[f"{n}_y"],
                         arrays[f"{n}_last_seen"], arrays[f"{n}_synthetic"]) for n in names}
    extra = {k: v for k, v in arrays.items() if k not in {"rows", "length"} and not k.startswith(tuple(names))}
    return sets, extra


def put_torch(obj: object, kind: str) -> str:
    """A scorer, or a tree of tensors and JSON-able values (training results), as a safetensors file."""
    from lstm_core.scoring import RareEventScorer

    tree = safe_files.scorer_tree(obj) if isinstance(obj, RareEventScorer) else obj
    return workspace.put_written(lambda fh: safe_files.save_tree(tree, fh), ".safetensors", kind)


def get_torch(uri: str) -> object:
    """What ``put_torch`` stored, read without unpickling: a file in any other format is refused."""
    tree = safe_files.load_tree(workspace.uri_path(uri))
    return safe_files.scorer_from_tree(tree) if safe_files.is_scorer_tree(tree) else tree
