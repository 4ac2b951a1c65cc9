"""Load a user's CSV or Parquet file, resolve which column means what, and lay the rows out as arrays.

Errors name the file, the column or the rows, so a user can fix their data without reading a traceback.
"""
from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lstm_core.config import DataConfig


class DataError(ValueError):
    """Bad input data: the message names the file, the column or the rows."""


MB = 1 << 20
MAX_LINES = 10  # line numbers quoted per problem
# candidate CSV delimiters, and how a message names them
DELIMITERS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}


def lines_text(rows: Sequence[int] | np.ndarray, total: int | None = None) -> str:
    """'line 5' or 'lines 5, 9, 12 (first 3 of 40)' from 0-based row positions; the header is line 1."""
    numbers = [int(i) + 2 for i in list(rows)[:MAX_LINES]]
    total = len(rows) if total is None else total
    if not numbers:
        return "unknown lines"
    word = "line" if len(numbers) == 1 else "lines"
    more = f" (first {len(numbers)} of {total})" if total > len(numbers) else ""
    return f"{word} {', '.join(map(str, numbers))}{more}"


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


def read_table(path: str | Path, sep: str = ",", max_file_mb: float | None = None) -> pd.DataFrame:
    """Read CSV or Parquet (never modified); every way a file can be unreadable ends in a DataError naming it."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: file not found")
    size = p.stat().st_size
    if size == 0:
        raise DataError(f"{p}: the file is empty (0 bytes)")
    if max_file_mb is not None and size > max_file_mb * MB:
        raise DataError(
            f"{p}: the file is {_size(size)}, over the {_size(max_file_mb * MB)} limit (data.max_file_mb = "
            f"{max_file_mb:g}); pandas needs several times a file's size in memory. Raise data.max_file_mb "
            "(--max-file-mb) if this machine has that memory, or pass a slice of the rows"
        )
    parquet = any(s in {".parquet", ".pq"} for s in (x.lower() for x in p.suffixes))
    try:
        df = read_parquet(p) if parquet else pd.read_csv(p, sep=sep, encoding="utf-8-sig", low_memory=False)
    except UnicodeDecodeError as exc:
        raise DataError(_undecodable(p)) from exc
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{p}: no columns to read (only blank lines?)") from exc
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        hint = "" if parquet else _delimiter_hint(p, sep)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{p}: cannot be parsed as {'Parquet' if parquet else 'CSV'}: {first}{hint}") from exc
    if not parquet and df.shape[1] == 1 and (hint := _delimiter_hint(p, sep)):
        raise DataError(f"{p}: read as one column named {str(df.columns[0])[:60]!r}{hint}")
    if len(df) == 0:
        raise DataError(f"{p}: a header with {df.shape[1]} column(s) but no data rows")
    return df


PARQUET_READ_GROUPS = 8


def read_parquet(path: str | Path) -> pd.DataFrame:
    """A Parquet file as pandas reads it, a group of columns at a time, one block per column.

    Arrow's memory pool keeps what a conversion frees until it is asked to give it back, so reading the whole
    file and converting it held the Arrow table and the frame side by side: three times the table at the peak
    (twice with one block per column). A group at a time, the overlap is one group's columns. A file that stores
    its index as columns is read whole (each group would carry the index again).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    meta = json.loads((schema.metadata or {}).get(b"pandas", b"{}") or b"{}")
    if any(isinstance(c, str) for c in meta.get("index_columns", [])) or len(set(schema.names)) < len(schema.names):
        return pd.read_parquet(path, to_pandas_kwargs={"split_blocks": True, "self_destruct": True})
    names = schema.names
    size = max(1, -(-len(names) // PARQUET_READ_GROUPS))
    parts = []
    for start in range(0, max(len(names), 1), size):
        table = pq.read_table(path, columns=names[start:start + size])
        parts.append(table.to_pandas(split_blocks=True, self_destruct=True))
        del table
        pa.default_memory_pool().release_unused()
    return pd.concat(parts, axis=1) if len(parts) > 1 else parts[0]


def _size(n_bytes: float) -> str:
    return f"{n_bytes / (1 << 30):.1f} GB" if n_bytes >= 1 << 30 else f"{n_bytes / MB:.1f} MB"


def _delimiter_hint(p: Path, sep: str) -> str:
    """'; it looks like ';'-separated: ...' when the header holds another delimiter more often than ``sep``."""
    with p.open("rb") as fh:
        header = fh.read(1 << 16).decode("utf-8-sig", errors="replace").splitlines()[:1]
    if not header:
        return ""
    counts = {d: header[0].count(d) for d in DELIMITERS if d != sep}
    best = max(counts, key=counts.get)
    if counts[best] <= header[0].count(sep):
        return ""
    shown = "\\t" if best == "\t" else best
    return (f"; it looks like {DELIMITERS[best]}-separated: set data.sep: '{shown}' in the config "
            f"(or --sep '{shown}')")


def _undecodable(p: Path) -> str:
    """Where the first byte that is not UTF-8 sits, as a line number, and what the file probably is."""
    data = p.read_bytes()  # only on this error path, and bounded by data.max_file_mb
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return f"{p}: the file is UTF-16 text; save it as UTF-8"
    try:
        data.decode("utf-8")
        return f"{p}: not UTF-8 text"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        start = data.rfind(b"\n", 0, exc.start) + 1
        end = data.find(b"\n", exc.start)
        shown = data[start:end if end >= 0 else len(data)][:80].decode("cp1252", errors="replace").strip()
        return (f"{p}: not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line} cannot be decoded (read as "
                f"Windows-1252 the line is {shown!r}); save the file as UTF-8")


def resolve_spec(df: pd.DataFrame, cfg: DataConfig) -> DataSpec:
    """Check that the named columns exist and pick default features: every other numeric column."""
    target = cfg.target_col
    if target is None:
        raise DataError("no target: pass --label-col (0/1 per row) or --event-col with --horizon")
    named = [cfg.time_col, target] + ([cfg.entity_col] if cfg.entity_col else []) + list(cfg.features or [])
    missing = [c for c in named if c not in df.columns]
    if missing:
        raise DataError(f"column(s) {missing} not found; the file has {list(df.columns)}")
    if target in (cfg.features or []):
        role = "event" if cfg.mode == "event" else "label"
        raise DataError(f"column '{target}' is the {role} column (the target) and cannot also be a feature; "
                        "remove it from --features / data.features")
    if cfg.features:
        features = tuple(cfg.features)
    else:
        skip = {cfg.time_col, target, cfg.entity_col}
        features = tuple(c for c in df.columns if c not in skip and _numeric_or_mostly(df[c]))
    if not features:
        raise DataError(f"no numeric feature columns besides {sorted(c for c in skip if c)}; name them with --features")
    return DataSpec(cfg.time_col, cfg.entity_col, features, target, cfg.mode, cfg.lookahead)


# a UTC offset written after a clock time: 'Z', 'UTC', '+02:00', '-0530'
_ZONE = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})$", re.IGNORECASE)


@dataclass(frozen=True)
class Times:
    """A time column read leniently: what parsed, what did not, and the UTC offset each text value carries."""

    values: np.ndarray  # (N,) int64: ns since epoch (UTC) for datetimes, else integer steps; 0 where not valid
    valid: np.ndarray  # (N,) bool
    is_datetime: bool
    unparsable: np.ndarray  # (N,) bool: present, but neither a datetime nor an integer step
    zones: np.ndarray | None = None  # (N,) object: the offset written in each text value ('+02:00'), else None
    mixed_zones: bool = False  # some text values carry a UTC offset and others none: no reading of them is right


def read_times(values: pd.Series) -> Times:
    """Integer steps stay integers; datetimes become ns since epoch in UTC. Never raises."""
    n = len(values)
    present = values.notna().to_numpy()
    none = np.zeros(n, bool)
    if pd.api.types.is_bool_dtype(values):
        return Times(np.zeros(n, np.int64), none, False, present)
    if pd.api.types.is_numeric_dtype(values):
        numbers = values.to_numpy(np.float64, na_value=np.nan)
        if np.all(np.mod(numbers[present], 1) == 0):
            return Times(np.where(present, numbers, 0).astype(np.int64), present, False, none)
        return Times(np.zeros(n, np.int64), none, False, present)  # fractional steps: no time axis we read
    if pd.api.types.is_datetime64_any_dtype(values):
        return _from_datetimes(values, present, None)
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(np.float64, na_value=np.nan)
    if present.any() and np.isfinite(numbers[present]).all() and np.all(np.mod(numbers[present], 1) == 0):
        return Times(np.where(present, numbers, 0).astype(np.int64), present, False, none)
    found = text.str.extract(_ZONE, expand=False).to_numpy(dtype=object, na_value=None)
    zones = np.array([_offset(z) for z in found], dtype=object)
    has = found != None  # noqa: E711 - elementwise over an object array
    if has.any() and not has[present].all():
        return Times(np.zeros(n, np.int64), none, True, none, zones, mixed_zones=True)
    with warnings.catch_warnings():  # "could not infer format": the mixed fallback below is meant for that
        warnings.simplefilter("ignore", UserWarning)
        utc = bool(has.any())
        try:
            parsed = pd.to_datetime(text, utc=utc)
        except (ValueError, TypeError, OverflowError):
            try:
                parsed = pd.to_datetime(text, utc=utc, format="mixed", errors="coerce")
            except (ValueError, TypeError):  # an offset our pattern missed ('+05'): mixed after all
                return Times(np.zeros(n, np.int64), none, True, none, zones, mixed_zones=True)
    return _from_datetimes(parsed, present, zones)


def _offset(zone: str | None) -> str | None:
    """'Z', 'utc', '+0200' → '+00:00', '+00:00', '+02:00'."""
    if zone is None:
        return None
    if zone.upper() in {"Z", "UTC", "GMT"}:
        return "+00:00"
    digits = zone[1:].replace(":", "")
    return f"{zone[0]}{digits[:2]}:{digits[2:]}"


def _from_datetimes(values: pd.Series, present: np.ndarray, zones: np.ndarray | None) -> Times:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    parsed = values.notna().to_numpy()
    ns = values.to_numpy("datetime64[ns]").astype(np.int64)
    return Times(np.where(parsed, ns, 0), parsed, True, present & ~parsed, zones)


def zone_problem(times: Times, values: pd.Series) -> str:
    """Why a column that mixes times with and without a UTC offset cannot be read, with the lines."""
    has = times.zones != None if times.zones is not None else np.zeros(len(values), bool)  # noqa: E711
    with_zone, without = np.flatnonzero(has), np.flatnonzero(~has & values.notna().to_numpy())
    if not len(with_zone) or not len(without):
        return "time zones that cannot be told apart; write every time with its UTC offset"
    a, b = int(with_zone[0]), int(without[0])
    return (f"mixed time zones: {len(with_zone)} time(s) carry a UTC offset ({lines_text(with_zone)}, e.g. "
            f"{values.iloc[a]!r}) and {len(without)} carry none ({lines_text(without)}, e.g. {values.iloc[b]!r}); "
            "write every time with its offset, or every time in one zone without one")


def _numeric_or_mostly(values: pd.Series) -> bool:
    """Numeric columns, and text columns most of whose values are numbers: a stray 'broken' or '1,5' must reach the
    contract, which names its lines, instead of silently taking the whole column out of the features."""
    if pd.api.types.is_bool_dtype(values):
        return False
    if pd.api.types.is_numeric_dtype(values):
        return True
    if not (pd.api.types.is_object_dtype(values) or pd.api.types.is_string_dtype(values)):
        return False
    present = values.dropna()
    sample = present.iloc[:10_000]
    return len(sample) > 0 and pd.to_numeric(sample, errors="coerce").notna().mean() > 0.5


def time_to_int(values: pd.Series, column: str) -> tuple[np.ndarray, bool]:
    """Integer steps stay integers; anything else must parse as datetimes (then ns since epoch, UTC)."""
    times = read_times(values)
    if times.mixed_zones:
        raise DataError(f"column '{column}': {zone_problem(times, values)}")
    if times.unparsable.any():
        bad = np.flatnonzero(times.unparsable)
        raise DataError(f"column '{column}': {len(bad)} value(s) neither integer steps nor datetimes, e.g. "
                        f"{values.iloc[int(bad[0])]!r} ({lines_text(bad)})")
    if not times.valid.all():
        missing = np.flatnonzero(~times.valid)
        raise DataError(f"column '{column}': {len(missing)} missing time(s) at {lines_text(missing)}")
    return times.values, times.is_datetime


def to_series(df: pd.DataFrame, spec: DataSpec, consume: bool = False,
              release: Callable[[], None] | None = None) -> Series:
    """Sort rows by entity (first appearance) then time and lay them out as contiguous arrays.

    ``consume=True`` deletes each feature column from ``df`` once it is copied, so a caller that holds the frame
    for nothing else never has the whole table and the feature array in memory side by side; ``release`` is
    called after each deletion (to hand the freed memory back).
    """
    if spec.entity_col:
        codes, names = pd.factorize(df[spec.entity_col], sort=False)
        names = [str(n) for n in names]
    else:
        codes, names = np.zeros(len(df), np.int64), [""]
    time, is_dt = time_to_int(df[spec.time_col], spec.time_col)
    order = np.lexsort((time, codes))
    in_order = np.array_equal(order, np.arange(len(order)))  # rows already in order need no reordering
    target = df[spec.target_col].to_numpy(np.int8)[order]
    # Filled column by column. Writing one column of a C-ordered (N, F) array touches every page of it, so the
    # whole array is resident beside the whole table from the first column on: table + features at the peak.
    # A consumed table whose feature columns are wider than float32 (float64, as CSV and pandas give) peaks
    # lower built as (F, N) rows, each freeing its column, then transposed once: the larger of the table and
    # twice the features (at 10M × 32 float64: 2.6 GB instead of 3.8 GB).
    n, width = len(df), len(spec.features)
    by_column = consume and sum(getattr(df[c].dtype, "itemsize", 8) for c in spec.features) > 4 * width
    feats = np.empty((width, n) if by_column else (n, width), np.float32)
    last_use = {col: j for j, col in enumerate(spec.features)}
    for j, col in enumerate(spec.features):
        values = df[col].to_numpy(np.float32)
        if by_column:
            feats[j] = values if in_order else values[order]
        else:
            feats[:, j] = values if in_order else values[order]
        del values
        if consume and last_use[col] == j and col not in (spec.time_col, spec.entity_col, spec.target_col):
            del df[col]  # the caller gave the frame away: each column is freed once it is in the array
            if release is not None:
                release()  # a frame read from Parquet lives in Arrow's pool, which keeps freed memory until asked
    if by_column:
        feats = np.ascontiguousarray(feats.T)
    return Series(
        features=feats,
        target=target,
        time=time[order],
        entity=codes.astype(np.int64)[order],
        entity_names=names,
        time_is_datetime=is_dt,
        spec=spec,
    )


FINGERPRINT_CHUNK_ROWS = 1 << 20


def fingerprint(df: pd.DataFrame, spec: DataSpec, target: bool = True) -> dict[str, object]:
    """A content hash of the columns the pipeline uses, with row and positive counts.

    ``target=False`` is for a file to score: it has no target column, so no positives are counted.
    """
    cols = list(spec.required if target else spec.required[:-1])
    digest = hashlib.sha256()
    digest.update(",".join(cols).encode())
    frame = df[cols]
    # a row's hash depends on that row alone, so hashing FINGERPRINT_CHUNK_ROWS rows at a time gives the same bytes
    # (and digest) as the whole table at once, without a hash temporary per column the length of the table
    for start in range(0, len(frame), FINGERPRINT_CHUNK_ROWS):
        chunk = frame.iloc[start:start + FINGERPRINT_CHUNK_ROWS]
        digest.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())
    out: dict[str, object] = {"hash": digest.hexdigest()[:16], "rows": int(len(df))}
    if target:
        out["positives"] = int(pd.to_numeric(df[spec.target_col], errors="coerce").fillna(0).astype(bool).sum())
    return out


def apply_missing(df: pd.DataFrame, spec: DataSpec, policy: str, limit: int) -> tuple[pd.DataFrame, dict]:
    """Apply the declared policy to missing feature values; return the rows to window and what was done.

    ``error`` refuses any; ``ffill`` carries the latest earlier value of the same entity forward, at most
    ``limit`` rows in a row, then drops the rows still missing (an entity's first rows, longer holes);
    ``drop`` drops every row with a missing feature. Filling never crosses an entity and never reads a
    later row. Row positions in messages are those of ``df`` (line = position + 2).
    """
    frame = df.reset_index(drop=True)
    feats = list(spec.features)
    # counted column by column: a (rows × features) boolean frame, and its interleaved copy, only when some are missing
    missing = sum(int(frame[c].isna().sum()) for c in feats)
    report = {"policy": policy, "missing_values": missing, "filled": 0, "dropped_rows": 0, "dropped_lines": ""}
    if report["missing_values"] == 0:
        return frame, report
    holes = frame[feats].isna()
    if policy == "error":
        col = next(c for c in feats if holes[c].any())
        rows = np.flatnonzero(holes[col].to_numpy())
        raise DataError(f"column '{col}': {len(rows)} missing value(s) at {lines_text(rows)}; data.missing is "
                        "'error': set it to 'ffill' or 'drop' (--missing) to handle them")
    if policy == "ffill":
        codes = pd.factorize(frame[spec.entity_col])[0] if spec.entity_col else np.zeros(len(frame), np.int64)
        order = np.lexsort((time_to_int(frame[spec.time_col], spec.time_col)[0], codes))
        filled = frame[feats].iloc[order].groupby(codes[order], sort=False).ffill(limit=limit)
        frame = frame.copy()
        frame[feats] = filled.sort_index()
        left = frame[feats].isna()
        report["filled"] = report["missing_values"] - int(left.to_numpy().sum())
        holes = left
    drop = holes.any(axis=1).to_numpy()
    report["dropped_rows"] = int(drop.sum())
    report["dropped_lines"] = lines_text(np.flatnonzero(drop)) if drop.any() else ""
    return frame.loc[~drop].reset_index(drop=True), report
