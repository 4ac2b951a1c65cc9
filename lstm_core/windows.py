"""Windows and their targets, as index views over one contiguous row array.

A window is L consecutive rows of one entity ending at row t; it is stored as the single integer t.
Batches are gathered on demand (``rows[ends[:, None] + offsets]``), so memory stays O(rows × features)
however long the window: a full (n, L, F) tensor only exists one batch at a time.
"""
from __future__ import annotations

import mmap
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from lstm_core.data import DataError, Series


def drop_mapped_pages(rows: np.ndarray) -> bool:
    """Let go of the resident pages of ``rows`` when they are mapped read-only from a file (a ``np.memmap`` of
    mode "r", or a view of one); True when they were.

    A stage that maps a fold's rows holds every page its windows touched, counted in its resident size, until
    the mapping closes. Between reading windows (summarising a training sample, say) and reading them again
    (scoring), such a stage can drop them: the next read faults them back from the page cache, the same bytes,
    and the file is never written. Rows in memory, or mapped writable or copy-on-write, are left alone.
    """
    base, mapped = rows, None
    while base is not None and not isinstance(base, mmap.mmap):
        if isinstance(base, np.memmap) and base.mode == "r":
            mapped = base
        base = getattr(base, "base", None)
    if mapped is None or base is None or not hasattr(mmap, "MADV_DONTNEED"):
        return False
    base.madvise(mmap.MADV_DONTNEED)
    return True


@dataclass(frozen=True)
class WindowSet:
    """Windows ending at ``ends`` over ``rows``, with their targets.

    ``last_seen`` is the latest value of the label/event column that is known when the window closes
    (``data.label_delay`` d: event mode event[t - d]; label mode label[t - max(d, 1 + label_lookahead)]),
    or -1 when labels are never known; the persistence baseline uses it.
    ``synthetic`` marks windows made by a resampler, so tests can prove none reaches validation or test.
    """

    rows: np.ndarray  # (N, F) float32
    ends: np.ndarray  # (n,) int64, row index of each window's last row
    length: int
    y: np.ndarray  # (n,) int8
    last_seen: np.ndarray  # (n,) int8
    synthetic: np.ndarray  # (n,) bool

    def __len__(self) -> int:
        return len(self.ends)

    @property
    def n_features(self) -> int:
        return self.rows.shape[1]

    def gather(self, idx: np.ndarray | slice | None = None) -> np.ndarray:
        """Materialise windows ``idx`` as (B, L, F); this is the only place a window copy is made."""
        ends = self.ends if idx is None else self.ends[idx]
        offsets = np.arange(-self.length + 1, 1, dtype=np.int64)
        return self.rows[ends[:, None] + offsets]  # (B, L, F)

    def subset(self, idx: np.ndarray) -> WindowSet:
        """The same rows, fewer windows."""
        return replace(self, ends=self.ends[idx], y=self.y[idx], last_seen=self.last_seen[idx],
                       synthetic=self.synthetic[idx])

    def with_rows(self, rows: np.ndarray) -> WindowSet:
        """The same windows over transformed rows (a scaled copy, say)."""
        if rows.shape[0] != self.rows.shape[0]:
            raise ValueError("with_rows needs one transformed row per original row")
        return replace(self, rows=rows)

    @classmethod
    def from_dense(cls, x: np.ndarray, y: np.ndarray, last_seen: np.ndarray | None = None,
                   synthetic: np.ndarray | None = None) -> WindowSet:
        """Wrap materialised windows (n, L, F): they become n·L rows and n ends, no special case."""
        n, length, f = x.shape
        rows = np.ascontiguousarray(x.reshape(n * length, f), dtype=np.float32)
        ends = np.arange(n, dtype=np.int64) * length + length - 1
        last = np.zeros(n, np.int8) if last_seen is None else np.asarray(last_seen, np.int8)
        synth = np.zeros(n, bool) if synthetic is None else np.asarray(synthetic, bool)
        return cls(rows, ends, length, np.asarray(y, np.int8), last, synth)


@dataclass(frozen=True)
class WindowIndex:
    """Every usable window of a series: its end row, target, and the last row its target reads."""

    ends: np.ndarray  # (n,) int64
    y: np.ndarray  # (n,) int8
    last_seen: np.ndarray  # (n,) int8
    reach: np.ndarray  # (n,) int64: last row of the same entity that decides the target


def gap_limit(max_gap: float | str | None, time_is_datetime: bool) -> int | None:
    """max_gap in the series' own time unit: ns for datetimes (from '2h'-style strings), steps otherwise."""
    if max_gap is None:
        return None
    if time_is_datetime:
        if not isinstance(max_gap, str):
            raise DataError(f"window.max_gap={max_gap!r}: the time column holds datetimes; give a duration such as '2h'")
        return int(pd.Timedelta(max_gap).value)
    try:
        return int(float(max_gap))
    except ValueError as exc:
        raise DataError(f"window.max_gap={max_gap!r}: the time column holds integer steps; give a number") from exc


def window_ends(series: Series, length: int, tail: int = 0, max_gap: float | str | None = None) -> np.ndarray:
    """Rows t that close a full window of one entity, with ``tail`` more rows of that entity after t."""
    n = len(series)
    if n == 0:
        return np.zeros(0, np.int64)
    sizes = series.stops - series.starts
    start_of = np.repeat(series.starts, sizes)  # (N,)
    stop_of = np.repeat(series.stops, sizes)  # (N,)
    t = np.arange(n, dtype=np.int64)
    ok = (t - length + 1 >= start_of) & (t + tail <= stop_of - 1)
    limit = gap_limit(max_gap, series.time_is_datetime)
    if limit is not None and length > 1:
        jump = np.zeros(n + 1, np.int64)
        jump[2:] = np.cumsum(np.diff(series.time) > limit)  # jump[i] = big gaps between rows < i
        lo = np.clip(t - length + 2, 0, n)
        ok &= (jump[t + 1] - jump[lo]) == 0
    return t[ok]


def make_windows(series: Series, length: int, max_gap: float | str | None = None,
                 label_delay: int | None = 0) -> WindowIndex:
    """Windows with a known target, exactly as defined: label[t], or any event in rows t+1 … t+H.

    ``last_seen`` reads only labels known when the window closes at t: the label of row s is known from row
    s + ``label_delay`` on, so it is event[t - delay] in event mode and label[t - max(delay, lookahead + 1)] in
    label mode (never the window's own label); 0 before the entity's first row. ``label_delay=None`` (never
    known): -1 for every window, which the persistence baseline reads as "no label to go by"."""
    spec = series.spec
    sig = series.target
    sizes = series.stops - series.starts
    start_of = np.repeat(series.starts, sizes)
    stop_of = np.repeat(series.stops, sizes)
    if spec.mode == "event":
        ends = window_ends(series, length, tail=spec.lookahead, max_gap=max_gap)
        csum = np.concatenate([[0], np.cumsum(sig, dtype=np.int64)])
        y = (csum[ends + spec.lookahead + 1] - csum[ends + 1]) > 0
        delay = 0 if label_delay is None else label_delay
        seen_at = ends - delay
        last_seen = np.where(seen_at >= start_of[ends], sig[np.maximum(seen_at, 0)], 0)
        reach = ends + spec.lookahead
    else:
        ends = window_ends(series, length, tail=0, max_gap=max_gap)
        y = sig[ends]
        seen_at = ends - max(0 if label_delay is None else label_delay, 1 + spec.lookahead)
        last_seen = np.where(seen_at >= start_of[ends], sig[np.maximum(seen_at, 0)], 0)
        reach = np.minimum(ends + spec.lookahead, stop_of[ends] - 1)
    if label_delay is None:
        last_seen = np.full(len(ends), -1)
    return WindowIndex(ends.astype(np.int64), y.astype(np.int8), last_seen.astype(np.int8), reach.astype(np.int64))


def window_set(rows: np.ndarray, index: WindowIndex, length: int, select: np.ndarray | None = None) -> WindowSet:
    """A WindowSet over ``rows`` for all windows of ``index`` (or the positions ``select``)."""
    sel = slice(None) if select is None else select
    ends = index.ends[sel]
    return WindowSet(rows, ends, length, index.y[sel], index.last_seen[sel], np.zeros(len(ends), bool))


def last_per_entity(series: Series, index: WindowIndex) -> np.ndarray:
    """Positions in ``index`` of each entity's last window (entities without a window are skipped)."""
    entity = series.entity[index.ends]
    is_last = np.ones(len(entity), bool)
    is_last[:-1] = entity[1:] != entity[:-1]
    return np.flatnonzero(is_last)
