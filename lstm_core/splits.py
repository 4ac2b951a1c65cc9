"""Walk-forward folds with a validation slice, a calibration slice, purge and embargo.

The data is cut into K+1 blocks (by window-end time, or by entity in order of first appearance); fold k
trains on the blocks before block k (all of them, or only the previous one when sliding) and tests on
block k. Each training part ends, in time (or entity) order, with its validation slice (the latest
``val_fraction``: early stopping and the learning-rate schedule) and then its calibration slice (the
latest ``calibration_fraction``: only the threshold is chosen there). With ``calibration_fraction`` 0
there is no calibration slice and the threshold is chosen on the validation slice.

Purge: a training, validation or calibration window whose target reads a row at or after the start of a
later part is dropped, and so is one whose reach plus ``embargo`` rows gets there. So no row that decides a
validation, calibration or test target is ever seen by an earlier part.

Tuning reads ``tuning_folds``: inner walk-forward folds cut from the windows before the first outer test
block only, so no window a tuned config is tested on ever helped choose it.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.preprocessing import StandardScaler

from lstm_core.config import PipelineConfig, SplitConfig
from lstm_core.data import DataError, Series
from lstm_core.windows import WindowIndex, WindowSet, window_set


@dataclass(frozen=True)
class Fold:
    """Positions into a WindowIndex for each part of one fold (k counts from 1)."""

    k: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    purged: int = 0
    bounds: dict[str, int] = field(default_factory=dict)  # val_start / cal_start / test_start / test_stop (time)
    calib: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))  # empty: threshold on val

    def parts(self) -> tuple[str, ...]:
        """The parts this fold holds: train, val, (calib,) test."""
        return ("train", "val", "calib", "test") if len(self.calib) else ("train", "val", "test")


def _reach_time(series: Series, index: WindowIndex, embargo: int) -> np.ndarray:
    """Time of the last row that decides each window's target, pushed ``embargo`` rows later."""
    entity_last = series.stops[series.entity[index.ends]] - 1
    return series.time[np.minimum(index.reach + embargo, entity_last)]


def _time_cuts(times: np.ndarray, blocks: int) -> np.ndarray:
    """Cut points that split the sorted window-end times into ``blocks`` blocks of about equal counts."""
    ordered = np.sort(times)
    cuts = ordered[(np.arange(1, blocks) * len(ordered)) // blocks]
    if len(np.unique(cuts)) < len(cuts) or (len(cuts) and cuts[0] <= ordered[0]):
        raise DataError(
            f"cannot cut {len(ordered)} windows into {blocks} time blocks: too many rows share a timestamp; "
            "use fewer folds"
        )
    return cuts


def time_folds(series: Series, index: WindowIndex, cfg: SplitConfig, inside: np.ndarray | None = None) -> list[Fold]:
    """Folds cut on the time axis, with purge and embargo against each later part.

    ``inside`` (a mask over the windows) restricts the folds to those windows: the tuning's inner folds.
    """
    end_t = series.time[index.ends]
    reach_t = _reach_time(series, index, cfg.embargo)
    inside = np.ones(len(end_t), bool) if inside is None else inside
    cuts = _time_cuts(end_t[inside], cfg.folds + 1)
    lows = np.concatenate([[np.iinfo(np.int64).min], cuts])
    highs = np.concatenate([cuts, [np.iinfo(np.int64).max]])
    folds = []
    for k in range(1, cfg.folds + 1):
        train_lo = lows[0] if cfg.scheme == "expanding" else lows[k - 1]
        test_lo, test_hi = lows[k], highs[k]
        part = np.flatnonzero(inside & (end_t >= train_lo) & (end_t < test_lo))
        ordered, n = np.sort(end_t[part]), len(part)
        cal_start = ordered[min(n - 1, int(n * (1 - cfg.calibration_fraction)))] if n and cfg.calibration_fraction \
            else test_lo
        val_start = ordered[int(n * (1 - cfg.calibration_fraction - cfg.val_fraction))] if n else test_lo
        t, r = end_t[part], reach_t[part]
        train = part[(t < val_start) & (r < val_start)]
        val = part[(t >= val_start) & (t < cal_start) & (r < cal_start)]
        calib = part[(t >= cal_start) & (r < test_lo)]
        test = np.flatnonzero(inside & (end_t >= test_lo) & (end_t < test_hi))
        stop = int(min(test_hi, end_t[inside].max() + 1))
        bounds = {"val_start": int(val_start), **({"cal_start": int(cal_start)} if cfg.calibration_fraction else {}),
                  "test_start": int(test_lo), "test_stop": stop}
        folds.append(Fold(k, train, val, test, n - len(train) - len(val) - len(calib), bounds, calib))
    return folds


def _slices(k: int, n_train: int, cfg: SplitConfig) -> tuple[int, int]:
    """Entities in fold k's validation and calibration slices (each at least one when asked for)."""
    n_val = max(1, int(round(n_train * cfg.val_fraction)))
    n_cal = max(1, int(round(n_train * cfg.calibration_fraction))) if cfg.calibration_fraction else 0
    if n_val + n_cal >= n_train:
        raise DataError(f"fold {k}: {n_train} training entities leave none to train on after a validation slice "
                        f"of {n_val}" + (f" and a calibration slice of {n_cal}" if n_cal else "") +
                        "; use fewer folds or a smaller split.val_fraction" +
                        (" or split.calibration_fraction" if n_cal else ""))
    return n_val, n_cal


def first_entity_block(series: Series, folds: int) -> np.ndarray:
    """The entities (codes, in order of appearance) of the first of the K+1 blocks an entity split cuts."""
    return np.array_split(np.arange(len(series.starts)), folds + 1)[0]


def tuned_rows_clear(series: Series, folds: list[Fold], config: PipelineConfig) -> tuple[bool, str]:
    """Whether every test block lies after what tuning read (``tune.tuned_before``), and where the first begins."""
    before = config.tune.tuned_before
    if config.split.by == "entity":
        first = len(first_entity_block(series, config.split.folds))
        return first >= before, f"the first test block starts at entity {first + 1}"
    start = folds[0].bounds["test_start"]
    return start >= before, f"the first test block starts at {start}"


def entity_folds(series: Series, index: WindowIndex, cfg: SplitConfig,
                 entities: np.ndarray | None = None) -> list[Fold]:
    """Folds over entities taken in order of first appearance; windows never cross entities, so no purge.

    ``entities`` (codes, in order) restricts the folds to those entities: the tuning's inner folds.
    """
    entities = np.arange(len(series.starts)) if entities is None else np.asarray(entities)
    if len(entities) < cfg.folds + 1:
        raise DataError(f"split.by=entity with {cfg.folds} folds needs at least {cfg.folds + 1} entities; "
                        f"the data has {len(entities)}")
    groups = np.array_split(entities, cfg.folds + 1)
    window_entity = series.entity[index.ends]
    folds = []
    for k in range(1, cfg.folds + 1):
        train_groups = groups[:k] if cfg.scheme == "expanding" else groups[k - 1:k]
        train_entities = np.concatenate(train_groups)
        n_val, n_cal = _slices(k, len(train_entities), cfg)
        fit_end = len(train_entities) - n_val - n_cal
        train = np.flatnonzero(np.isin(window_entity, train_entities[:fit_end]))
        val = np.flatnonzero(np.isin(window_entity, train_entities[fit_end:fit_end + n_val]))
        calib = np.flatnonzero(np.isin(window_entity, train_entities[fit_end + n_val:]))
        test = np.flatnonzero(np.isin(window_entity, groups[k]))
        folds.append(Fold(k, train, val, test, calib=calib))
    return folds


def _checked(folds: list[Fold], cfg: SplitConfig, what: str = "fold") -> list[Fold]:
    for fold in folds:
        parts = ("train", "val", "calib", "test") if cfg.calibration_fraction else ("train", "val", "test")
        for part in parts:
            if len(getattr(fold, part)) == 0:
                raise DataError(f"{what} {fold.k}: the {part} part holds no window after the purge; "
                                "use fewer folds, a shorter window or horizon, or more data")
    return folds


def make_folds(series: Series, index: WindowIndex, cfg: SplitConfig) -> list[Fold]:
    """Walk-forward folds; every part must hold at least one window."""
    if len(index.ends) == 0:
        raise DataError("no complete window in the data: every entity is shorter than window + horizon")
    return _checked((entity_folds if cfg.by == "entity" else time_folds)(series, index, cfg), cfg)


def tuning_folds(series: Series, index: WindowIndex, cfg: SplitConfig, inner: int,
                 before: int) -> list[Fold]:
    """The tuning's inner walk-forward folds: ``inner`` folds over the windows before the first outer test block.

    Split by time, ``before`` is a time at or before the first outer test block's start (see
    ``autocorr.first_block_boundary``): a window is kept only when it ends before it and its target, plus the
    embargo, reads no row at or after it (the purge). Split by entity, ``before`` is the number of leading
    entities (the first of the K+1 outer blocks). Inner folds have no calibration slice: tuning reads
    training and validation windows only.
    """
    inner_cfg = cfg.model_copy(update={"folds": inner, "calibration_fraction": 0.0})
    if cfg.by == "entity":
        folds = entity_folds(series, index, inner_cfg, np.arange(before))
    else:
        inside = (series.time[index.ends] < before) & (_reach_time(series, index, cfg.embargo) < before)
        if inside.sum() < inner + 1:
            raise DataError(f"tuning: {int(inside.sum())} window(s) end before the first outer test block, too few "
                            f"for {inner} inner folds; use fewer folds (split.folds or tune.inner_folds) or more data")
        folds = time_folds(series, index, inner_cfg, inside)
    return _checked(folds, inner_cfg, "inner fold")


def tuning_scope(series: Series, config: PipelineConfig, longest: int) -> tuple[int, str]:
    """Where tuning may read: (``before`` for ``tuning_folds``, the same in words).

    Split by time: a time at or before the first outer test block's start for every window length up to
    ``longest`` (``autocorr.first_block_boundary``), so the outer test blocks of whichever length the search
    picks lie after it. Split by entity: the entities of the first of the K+1 outer blocks (they never move).
    """
    from lstm_core.autocorr import first_block_boundary

    if config.split.by == "entity":
        first = first_entity_block(series, config.split.folds)
        names = [series.entity_names[i] for i in first]
        return len(first), (f"entities {names[0]} … {names[-1]} (the first of {config.split.folds + 1} entity "
                            "blocks; the outer test blocks are later entities)")
    before = first_block_boundary(series, config, longest)
    return before, (f"windows whose rows and targets end before {_fmt_time(series, before)} (the first outer test "
                    f"block, for any window up to {longest} rows, starts at or after it)")


def check_fold_positives(series: Series, index: WindowIndex, folds: list[Fold], min_positives: int) -> list[str]:
    """One sentence per fold part (training or test) holding fewer than ``min_positives`` positive windows.

    A part without positives cannot train a detector or score one: each sentence names the fold, where the
    part lies (its time range, or its entities when split by entity) and what to change.
    """
    if series.spec.mode == "event":
        advice = "use fewer folds (--folds), longer data, or a longer horizon (--horizon)"
    else:
        advice = "use fewer folds (--folds) or longer data"
    problems = []
    for fold in folds:
        for part, word in (("train", "training"), ("test", "test")):
            pos = getattr(fold, part)
            found = int(index.y[pos].sum())
            if found >= min_positives:
                continue
            problems.append(f"fold {fold.k}: the {word} part ({_where(series, index, pos)}, {len(pos)} windows) "
                            f"holds {found} positive window(s), fewer than data.min_positives = {min_positives}; "
                            f"{advice}")
    return problems


def _where(series: Series, index: WindowIndex, pos: np.ndarray) -> str:
    """'windows ending 2024-01-03T04:00:00 … 2024-01-05T11:00:00, entities m0 … m1'."""
    if not len(pos):
        return "no window"
    times = series.time[index.ends[pos]]
    codes = np.unique(series.entity[index.ends[pos]])
    span = f"windows ending {_fmt_time(series, int(times.min()))} … {_fmt_time(series, int(times.max()))}"
    if not series.spec.entity_col:
        return span
    names = [series.entity_names[c] for c in codes]
    return f"{span}, entities {names[0]} … {names[-1]}" if len(names) > 1 else f"{span}, entity {names[0]}"


def training_rows(ends: np.ndarray, length: int, n_rows: int) -> np.ndarray:
    """Boolean mask of the rows that some window in ``ends`` reads (what a scaler may be fitted on)."""
    marks = np.zeros(n_rows + 1, np.int64)
    np.add.at(marks, ends - length + 1, 1)
    np.add.at(marks, ends + 1, -1)
    return np.cumsum(marks[:-1]) > 0


def fold_summary(series: Series, index: WindowIndex, fold: Fold) -> dict[str, object]:
    """Ranges and counts of each part, for the summary JSON and MLflow."""
    out: dict[str, object] = {"fold": fold.k, "purged": fold.purged}
    for part in fold.parts():
        pos = getattr(fold, part)
        times = series.time[index.ends[pos]]
        ents = np.unique(series.entity[index.ends[pos]])
        out[part] = {
            "windows": int(len(pos)),
            "positives": int(index.y[pos].sum()),
            "time_from": _fmt_time(series, int(times.min())),
            "time_to": _fmt_time(series, int(times.max())),
            "entities": len(ents),
        }
    return out


def _fmt_time(series: Series, value: int) -> str | int:
    if series.time_is_datetime:
        return str(np.datetime64(value, "ns").astype("datetime64[s]"))
    return value


@dataclass(frozen=True)
class FoldWindows:
    """One fold's windows over rows scaled with statistics of its training rows only."""

    train: WindowSet
    val: WindowSet
    test: WindowSet
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    calib: WindowSet | None = None  # None: no calibration slice, the threshold is chosen on val

    def sets(self) -> dict[str, WindowSet]:
        """The fold's window sets by part name (calib only when the fold has one)."""
        out = {"train": self.train, "val": self.val, "test": self.test}
        return out | ({"calib": self.calib} if self.calib is not None else {})


SCALER_CHUNK_ROWS = 1 << 20


def fit_scaler(rows: np.ndarray, ends: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of the rows that the windows ``ends`` read, and of no other row.

    scikit-learn's StandardScaler, fed ``SCALER_CHUNK_ROWS`` rows at a time: a masked copy of every training
    row, and the scaler's float64 pass over it, would cost three times the feature matrix on large data.
    """
    mask = training_rows(ends, length, len(rows))
    scaler = StandardScaler()
    if not mask.any():
        scaler.fit(rows[mask])  # scikit-learn's own error: no sample to fit on
    for start in range(0, len(rows), SCALER_CHUNK_ROWS):
        part = rows[start:start + SCALER_CHUNK_ROWS][mask[start:start + SCALER_CHUNK_ROWS]]
        if len(part):
            scaler.partial_fit(part)
    return scaler.mean_.astype(np.float32), scaler.scale_.astype(np.float32)


def scale_rows(rows: np.ndarray, mean: np.ndarray, scale: np.ndarray, in_place: bool = False) -> np.ndarray:
    """``(rows - mean) / scale`` in float32, as one new array (no temporaries the size of the rows).

    ``in_place=True`` writes the result over ``rows`` (float32) instead: the same numbers, no second array."""
    if in_place and rows.dtype != np.float32:
        raise ValueError(f"scale_rows(in_place=True) needs float32 rows, not {rows.dtype}")
    out = np.subtract(rows, mean, dtype=np.float32, out=rows if in_place else None)
    out /= scale
    return out


def fold_windows(series: Series, index: WindowIndex, fold: Fold, length: int, in_place: bool = False) -> FoldWindows:
    """Scale all rows with the training part's statistics and cut the fold's window sets.

    ``in_place=True`` scales ``series.features`` itself (a caller's private copy it no longer needs unscaled):
    the fold then holds one row array instead of two."""
    mean, scale = fit_scaler(series.features, index.ends[fold.train], length)
    rows = scale_rows(series.features, mean, scale, in_place=in_place)
    parts = [window_set(rows, index, length, getattr(fold, p)) for p in ("train", "val", "test")]
    calib = window_set(rows, index, length, fold.calib) if len(fold.calib) else None
    return FoldWindows(*parts, mean=mean, scale=scale, calib=calib)
