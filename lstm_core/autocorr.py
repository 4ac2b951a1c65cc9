"""``window: auto``: a window length suggested by the autocorrelation of the target and the features.

The rule (the usual one for choosing how far back an LSTM should look): for each column, the first lag
k ≥ 1 at which its autocorrelation falls inside the ~95% band of a white-noise series, |acf(k)| < 1.96/√n,
where n is the number of rows the estimate uses. Past that lag the rows no longer tell measurably more about
the present one.

- **Per entity, pooled.** Each entity's rows are centred on their own mean, and only products of rows of the
  same entity enter the sums: acf(k) = Σ_e Σ_t z_t z_{t+k} / Σ_e Σ_t z_t². So the entities' level differences
  do not pass for memory, and no product spans two entities.
- **Combined.** The suggestion is max(lag of the target, median of the features' lags), clipped to
  ``[window.auto_min, window.auto_max]``, the upper end lowered to the longest window the data holds. The
  window covers how long the target itself persists and what the typical feature remembers, and one
  sluggish feature (a slow trend) cannot stretch it alone. A column whose acf never enters the band up to
  the upper end counts as the upper end; a constant one is skipped.
- **Only rows before the first test block.** The suggestion is a choice made from data, so it may read only
  what the first fold may train on. Split by entity: the rows of the entities in the first of the K+1 blocks.
  Split by time: the rows earlier than a boundary that lies at or before the first test block for *every*
  length it may pick, since the blocks are cut on window-end times and move with the length (see
  ``first_block_boundary``). In label mode a label that looks ``label_lookahead`` rows ahead is read only
  when the row it looks at also lies before the boundary.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lstm_core.config import PipelineConfig
from lstm_core.data import DataError, Series
from lstm_core.windows import window_ends

Z95 = 1.959963984540054  # two-sided 95% normal quantile


@dataclass(frozen=True)
class AcfSuggestion:
    """What ``window: auto`` decided, and from which rows."""

    length: int  # the resolved window length, clipped
    raw: int  # max(target lag, median feature lag) before clipping
    names: list[str]  # the target column first, then the features that were not constant
    lags: list[int]  # first lag inside the band, per name
    acf: np.ndarray  # (upper end + 1, len(names)) pooled acf, lag 0 first
    band: float  # 1.96 / sqrt(rows)
    rows: int  # rows the feature estimate read
    boundary: str  # where reading stopped, in words
    clipped_to: tuple[int, int] = field(default=(1, 1))
    has_target: bool = True  # False when the target is constant on these rows: names then hold features only

    def params(self) -> dict[str, object]:
        """Flat values for the run's params."""
        return {"window.auto.raw": self.raw, "window.auto.rows": self.rows, "window.auto.boundary": self.boundary,
                "window.auto.lags": ",".join(f"{n}:{lag}" for n, lag in zip(self.names, self.lags, strict=True))}


def pooled_acf(values: np.ndarray, starts: np.ndarray, stops: np.ndarray, nlags: int) -> np.ndarray:
    """Autocorrelation at lags 0 … nlags of each column of ``values`` (N, C) over the segments [start, stop).

    Each segment is centred on its own mean; products never span two segments (``nlags`` zeros keep them
    apart, so one FFT per column covers every segment). Returns (nlags + 1, C); a constant column is all NaN.
    """
    values = np.asarray(values, np.float64)
    values = values[:, None] if values.ndim == 1 else values
    sizes = np.asarray(stops - starts, np.int64)
    keep = sizes > 0
    starts, sizes = np.asarray(starts)[keep], sizes[keep]
    out = np.full((nlags + 1, values.shape[1]), np.nan)
    if not len(sizes):
        return out
    seg = np.repeat(np.arange(len(sizes)), sizes)  # (n,) segment of each used row
    within = np.arange(len(seg)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    src = starts[seg] + within  # (n,) row read
    dst = (np.cumsum(sizes + nlags) - sizes - nlags)[seg] + within  # (n,) place in the padded array
    total = int(dst[-1] + 1 + nlags)
    n_fft = 1 << int(np.ceil(np.log2(2 * total)))
    for c in range(values.shape[1]):
        x = values[src, c]
        means = np.add.reduceat(x, np.cumsum(sizes) - sizes) / sizes
        z = np.zeros(total)
        z[dst] = x - means[seg]
        ss = float(z @ z)
        if ss <= 1e-12 * float(x @ x):  # constant within every segment
            continue
        spectrum = np.fft.rfft(z, n_fft)
        out[:, c] = np.fft.irfft(spectrum * np.conj(spectrum), n_fft)[:nlags + 1] / ss  # Σ z_t z_{t+k} / Σ z²
    return out


def first_lag_inside(acf: np.ndarray, band: float) -> int:
    """The first lag k ≥ 1 with |acf[k]| < band; len(acf) - 1 (the longest lag looked at) when there is none."""
    inside = np.flatnonzero(np.abs(acf[1:]) < band)
    return int(inside[0]) + 1 if len(inside) else len(acf) - 1


def _tail(config: PipelineConfig) -> int:
    return config.data.lookahead if config.data.mode == "event" else 0


def longest_length(series: Series, config: PipelineConfig) -> int:
    """The longest window ``auto`` may pick: ``auto_max``, or less when the data cannot hold it.

    Split by entity: some entity must hold the window plus the horizon (without a gap above ``max_gap``).
    Split by time: the window must also fit in the first block, before the first test block's start at
    length 1. Read from the rows' times and entities only.
    """
    def fits(length: int) -> bool:
        return len(window_ends(series, length, tail=_tail(config), max_gap=config.window.max_gap)) > 0

    lo, hi = config.window.auto_min, config.window.auto_max
    if config.split.by == "time" and len(window_ends(series, 1, tail=_tail(config))):
        bound = first_block_boundary(series, config, 1)
        held = max(int(np.searchsorted(series.time[a:b], bound)) for a, b in zip(series.starts, series.stops,
                                                                                 strict=True))
        if held - _tail(config) < lo:
            raise DataError(f"window: auto: the first of the {config.split.folds + 1} time blocks holds at most "
                            f"{held} rows of an entity, too few for window.auto_min = {lo} (plus the horizon); "
                            "use fewer folds or a smaller window.auto_min, or give window.length as a number")
        hi = min(hi, held - _tail(config))
    if not fits(lo):
        raise DataError(f"window: auto needs some entity to hold window.auto_min = {lo} rows (plus the horizon, "
                        "without a larger gap than window.max_gap); give window.length as a number")
    while lo < hi:  # windows of length L exist for every L up to the longest: bisect
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def first_block_boundary(series: Series, config: PipelineConfig, longest: int | None = None) -> int:
    """Split by time: a time at or before the start of the first test block, whichever length in
    [1, longest] the window gets (``longest_length`` by default).

    The first test block starts at the (n_L // (K+1))-th smallest end time of the n_L windows of length L.
    Every such end is a row that closes a window of length 1, and n_L ≥ n_longest; so the
    (n_longest // (K+1))-th smallest end time of the length-1 windows is never later. It depends on
    times, entities and gaps only, never on a feature or target value.
    """
    longest = longest_length(series, config) if longest is None else longest
    ends_one = window_ends(series, 1, tail=_tail(config))
    n_longest = len(window_ends(series, longest, tail=_tail(config), max_gap=config.window.max_gap))
    return int(np.sort(series.time[ends_one])[n_longest // (config.split.folds + 1)])


def first_block(series: Series, config: PipelineConfig,
                longest: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """Per entity, where its feature rows and its target rows stop being readable; and the boundary in words.

    Returns (starts, feature_stops, target_stops, boundary): segments [start, stop) of each entity.
    """
    starts, stops = series.starts, series.stops
    if config.split.by == "entity":
        first = np.array_split(np.arange(len(starts)), config.split.folds + 1)[0]
        keep = np.zeros(len(starts), bool)
        keep[first] = True
        f_stops = np.where(keep, stops, starts)
        names = [series.entity_names[i] for i in first]
        return starts, f_stops, f_stops, f"entities {names[0]} … {names[-1]} (first of {config.split.folds + 1})"
    bound = first_block_boundary(series, config, longest)
    f_stops = starts + np.array([np.searchsorted(series.time[a:b], bound) for a, b in zip(starts, stops, strict=True)],
                                dtype=np.int64)
    t_stops = f_stops
    if config.data.mode == "label" and config.data.label_lookahead:
        # label[t] looks at row t + K (at most the entity's last): read it only when that row is before the boundary
        cut = np.maximum(starts, f_stops - config.data.label_lookahead)
        t_stops = np.where(f_stops == stops, stops, cut)
    when = str(np.datetime64(bound, "ns").astype("datetime64[s]")) if series.time_is_datetime else str(bound)
    return starts, f_stops, t_stops, f"time < {when}"


def suggest_length(series: Series, config: PipelineConfig, reads_for: int = 0) -> AcfSuggestion:
    """The window length ``window: auto`` resolves to on ``series`` (see the module's docstring).

    ``reads_for``: read only rows before the first test block of windows up to this length too, when it is
    longer than auto may pick (tuning, whose choices may be longer: the outer test blocks of all of them)."""
    lo, hi = config.window.auto_min, longest_length(series, config)
    starts, f_stops, t_stops, boundary = first_block(series, config, max(hi, reads_for))
    rows, target_rows = int(np.sum(f_stops - starts)), int(np.sum(t_stops - starts))
    if rows < 2 or target_rows < 2:
        raise DataError(f"window: auto found {rows} row(s) before the first test block ({boundary}); it reads no "
                        "later row. Use fewer folds, more data, or give window.length as a number")
    feats = pooled_acf(series.features, starts, f_stops, hi)  # (hi + 1, F)
    target = pooled_acf(series.target, starts, t_stops, hi)[:, 0]  # (hi + 1,)
    band = Z95 / np.sqrt(rows)
    names, lags, columns = [], [], []
    target_lag = 0
    if np.isfinite(target).all():
        target_lag = first_lag_inside(target, Z95 / np.sqrt(target_rows))
        names.append(series.spec.target_col)
        lags.append(target_lag)
        columns.append(target)
    feature_lags = [first_lag_inside(feats[:, c], band) for c in range(feats.shape[1])
                    if np.isfinite(feats[:, c]).all()]
    used = [c for c in range(feats.shape[1]) if np.isfinite(feats[:, c]).all()]
    names += [series.spec.features[c] for c in used]
    lags += feature_lags
    columns += [feats[:, c] for c in used]
    if not lags:
        raise DataError(f"window: auto: the target and every feature are constant before the first test block "
                        f"({boundary}); give window.length as a number")
    raw = max(target_lag, int(np.ceil(np.median(feature_lags))) if feature_lags else 0)
    return AcfSuggestion(int(np.clip(raw, lo, hi)), raw, names, lags, np.stack(columns, axis=1), float(band), rows,
                         boundary, (lo, hi), has_target=len(lags) > len(feature_lags))


def resolve_length(series: Series, config: PipelineConfig,
                   reads_for: int = 0) -> tuple[PipelineConfig, AcfSuggestion | None]:
    """``config`` with ``window.length`` an integer: unchanged when it is one, else the ACF's suggestion
    (``reads_for``: see ``suggest_length``)."""
    if config.window.length != "auto":
        return config, None
    found = suggest_length(series, config, reads_for)
    return config.with_values({"window.length": found.length}), found
