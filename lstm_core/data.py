"""Load a user's CSV or Parquet file, resolve which column means what, and lay the rows out as arrays.

Errors name the file, the column or the rows, so a user can fix their data without reading a traceback.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lstm_core.config import DataConfig


class DataError(ValueError):
    """Bad input data: the message names the file, the column or the rows."""


@dataclass(frozen=True)
class DataSpec:
    """The meaning of each column, resolved against a real table."""

    time_col: str
    entity_col: str | None
    features: tuple[str, ...]
    target_col: str
    mode: str  # "label" | "event"
    lookahead: int  # rows past t that decide the target of the window ending at t

    @property
    def required(self) -> tuple[str, ...]:
        head = (self.time_col,) + ((self.entity_col,) if self.entity_col else ())
        return head + self.features + (self.target_col,)


@dataclass
class Series:
    """Rows sorted by entity (in order of first appearance) then time, as contiguous arrays."""

    features: np.ndarray  # (N, F) float32
    target: np.ndarray  # (N,) int8: the label or event column
    time: np.ndarray  # (N,) int64: ns since epoch for datetimes, else the integer step
    entity: np.ndarray  # (N,) int64 code, 0 when there is no entity column
    entity_names: list[str]
    time_is_datetime: bool
    spec: DataSpec
    starts: np.ndarray = field(init=False)  # (E,) first row of each entity
    stops: np.ndarray = field(init=False)  # (E,) one past the last row of each entity

    def __post_init__(self) -> None:
        change = np.flatnonzero(np.diff(self.entity)) + 1
        self.starts = np.concatenate([[0], change]).astype(np.int64)
        self.stops = np.concatenate([change, [len(self.entity)]]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.target)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (for an .npz file); ``from_arrays`` rebuilds the Series."""
        meta = {"entity_names": self.entity_names, "time_is_datetime": self.time_is_datetime,
                "spec": {**self.spec.__dict__, "features": list(self.spec.features)}}
        return {"features": self.features, "target": self.target, "time": self.time, "entity": self.entity,
                "meta": np.array(json.dumps(meta))}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> Series:
        meta = json.loads(str(arrays["meta"]))
        spec = DataSpec(**{**meta["spec"], "features": tuple(meta["spec"]["features"])})
        return cls(arrays["features"], arrays["target"], arrays["time"], arrays["entity"],
                   meta["entity_names"], meta["time_is_datetime"], spec)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV or Parquet; turn pandas' parse errors into a message naming the file."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise DataError(f"{p}: the file is empty")
    suffixes = "".join(p.suffixes).lower()
    try:
        if ".parquet" in suffixes or ".pq" in suffixes:
            return pd.read_parquet(p)
        return pd.read_csv(p, encoding="utf-8-sig", low_memory=False)
    except UnicodeDecodeError as exc:
        raise DataError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{p}: no columns to read (empty file?)") from exc
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        raise DataError(f"{p}: cannot be parsed as {'Parquet' if 'parquet' in suffixes else 'CSV'}: {exc}") from exc


def resolve_spec(df: pd.DataFrame, cfg: DataConfig) -> DataSpec:
    """Check that the named columns exist and pick default features: every other numeric column."""
    target = cfg.target_col
    if target is None:
        raise DataError("no target: pass --label-col (0/1 per row) or --event-col with --horizon")
    named = [cfg.time_col, target] + ([cfg.entity_col] if cfg.entity_col else []) + list(cfg.features or [])
    missing = [c for c in named if c not in df.columns]
    if missing:
        raise DataError(f"column(s) {missing} not found; the file has {list(df.columns)}")
    if cfg.features:
        features = tuple(cfg.features)
    else:
        skip = {cfg.time_col, target, cfg.entity_col}
        features = tuple(c for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c]))
        features = tuple(c for c in features if not pd.api.types.is_bool_dtype(df[c]))
    if not features:
        raise DataError(f"no numeric feature columns besides {sorted(c for c in skip if c)}; name them with --features")
    return DataSpec(cfg.time_col, cfg.entity_col, features, target, cfg.mode, cfg.lookahead)


def time_to_int(values: pd.Series, column: str) -> tuple[np.ndarray, bool]:
    """Integer steps stay integers; anything else must parse as datetimes (then ns since epoch)."""
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy(np.int64), False
    if pd.api.types.is_float_dtype(values) and np.all(np.mod(values.dropna(), 1) == 0):
        return values.to_numpy(np.int64), False
    if not pd.api.types.is_datetime64_any_dtype(values):
        try:
            values = pd.to_datetime(values, format="mixed")
        except (ValueError, TypeError) as exc:
            raise DataError(f"column '{column}': neither integer steps nor datetimes ({exc})") from exc
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    return values.to_numpy("datetime64[ns]").astype(np.int64), True


def to_series(df: pd.DataFrame, spec: DataSpec) -> Series:
    """Sort rows by entity (first appearance) then time and lay them out as contiguous arrays."""
    if spec.entity_col:
        codes, names = pd.factorize(df[spec.entity_col], sort=False)
        names = [str(n) for n in names]
    else:
        codes, names = np.zeros(len(df), np.int64), [""]
    time, is_dt = time_to_int(df[spec.time_col], spec.time_col)
    order = np.lexsort((time, codes))
    feats = df.loc[:, list(spec.features)].to_numpy(np.float32)[order]
    return Series(
        features=np.ascontiguousarray(feats),
        target=df[spec.target_col].to_numpy(np.int8)[order],
        time=time[order],
        entity=codes.astype(np.int64)[order],
        entity_names=names,
        time_is_datetime=is_dt,
        spec=spec,
    )


def fingerprint(df: pd.DataFrame, spec: DataSpec) -> dict[str, object]:
    """A content hash of the columns the pipeline uses, with row and positive counts."""
    cols = list(spec.required)
    digest = hashlib.sha256()
    digest.update(",".join(cols).encode())
    digest.update(pd.util.hash_pandas_object(df[cols], index=False).to_numpy().tobytes())
    return {
        "hash": digest.hexdigest()[:16],
        "rows": int(len(df)),
        "positives": int(pd.to_numeric(df[spec.target_col], errors="coerce").fillna(0).astype(bool).sum()),
    }
