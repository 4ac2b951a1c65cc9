"""Warnings judged the way an operator judges them: episodes caught, how early, and false alarms.

Words (one meaning everywhere):

- **episode**: a maximal run of positive rows (label or event) of one entity; its **onset** is its first row.
- **alarm**: a test window whose score is at or above the fold's threshold. An **alarm episode** is a maximal
  run of alarms of one entity on consecutive rows.
- **detection zone** of an episode with onset o (ending at row e): event mode, the ``zone_rows`` rows before the
  onset, o - zone_rows … o - 1 (default: the horizon H, exactly the windows whose target the episode makes 1);
  label mode, its first ``zone_rows`` rows, o … o + zone_rows - 1 (default: the whole episode, the rule of
  telemanom's event-level recall). Zones never leave the entity.
- **warning zone**: the detection zone up to the episode's last row (event mode: from o - max(zone_rows, H)).
  An alarm episode that overlaps no warning zone of its entity is a **false alarm**.
- An episode **counts** in a fold when at least one test window ends in its detection zone: an episode whose
  zone lies before the test block (an onset at an entity's first row in event mode, or an episode that began
  in the previous block) could not have been warned of there and is neither caught nor missed.
- **episode recall**: counted episodes with an alarm in their detection zone / counted episodes.
- **lead time**: onset - the first alarm in the detection zone, in rows (event mode 1 … zone_rows; label mode
  ≤ 0: rows late), and in hours when the time column holds datetimes.
- **false alarms per day** (datetimes): false alarms / (test windows × the median row step, in days); with
  integer time, **per 1,000 test windows**.
- **onset PR-AUC / MCC**: the window metrics on the windows whose entity is not already inside an episode
  when the window closes (event mode: event[t] = 0; label mode: label[t-1] = 0 or t is the entity's first
  row). This is the early-warning question without the "already happening" windows.

Pure numpy and scikit-learn; nothing here knows about folds, trackers or flows.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import average_precision_score, matthews_corrcoef

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
EPISODE_METRICS = ("episode_recall", "episode_precision", "episode_f1", "lead_rows_median", "false_alarms",
                   "onset_pr_auc", "onset_mcc")


@dataclass(frozen=True)
class RowLabels:
    """The row-level target of a series laid out per entity (rows sorted by entity, then time)."""

    target: np.ndarray  # (N,) 0/1
    entity: np.ndarray  # (N,) entity code per row
    time: np.ndarray  # (N,) int64: ns for datetimes, else integer steps
    time_is_datetime: bool
    mode: str  # "event" | "label"
    lookahead: int  # event mode: the horizon H; label mode: label_lookahead

    @classmethod
    def from_series(cls, series) -> RowLabels:
        """The row-level target of a laid-out ``Series`` (what a fold file stores beside its windows)."""
        return cls(series.target, series.entity, series.time, bool(series.time_is_datetime), series.spec.mode,
                   int(series.spec.lookahead))

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain arrays (no pickle) to store with a fold's windows; ``from_arrays`` reads them back."""
        meta = json.dumps({"datetime": self.time_is_datetime, "mode": self.mode, "lookahead": self.lookahead})
        return {"row_target": self.target, "row_entity": self.entity, "row_time": self.time,
                "row_meta": np.array(meta)}

    @classmethod
    def from_arrays(cls, arrays: dict) -> RowLabels | None:
        """RowLabels from ``to_arrays``' arrays; None for a fold stored without them."""
        if "row_target" not in arrays:
            return None
        meta = json.loads(str(arrays["row_meta"]))
        return cls(arrays["row_target"], arrays["row_entity"], arrays["row_time"], meta["datetime"], meta["mode"],
                   meta["lookahead"])

    def __post_init__(self) -> None:
        n = len(self.target)
        if len(self.entity) != n or len(self.time) != n:
            raise ValueError(f"RowLabels: target has {n} rows but entity has {len(self.entity)} and time "
                             f"{len(self.time)}")
        if self.mode not in ("event", "label"):
            raise ValueError(f"RowLabels.mode must be 'event' or 'label', got {self.mode!r}")

    def entity_starts(self) -> np.ndarray:
        """(N,) the first row of each row's entity."""
        n = len(self.target)
        new = np.ones(n, bool)
        new[1:] = self.entity[1:] != self.entity[:-1]
        first = np.flatnonzero(new)
        return first[np.cumsum(new) - 1] if n else np.zeros(0, np.int64)

    def entity_stops(self) -> np.ndarray:
        """(N,) the last row of each row's entity."""
        n = len(self.target)
        last = np.ones(n, bool)
        last[:-1] = self.entity[1:] != self.entity[:-1]
        idx = np.flatnonzero(last)
        return idx[np.searchsorted(idx, np.arange(n))] if n else np.zeros(0, np.int64)


def runs(flags: np.ndarray, entity: np.ndarray, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """First and last position of each maximal run of True in ``flags`` with the same entity and, when ``rows``
    is given, consecutive row numbers. Returned as positions into ``flags``."""
    flags = np.asarray(flags, bool)
    n = len(flags)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    cont = np.zeros(n, bool)  # position i continues the run of position i-1
    cont[1:] = flags[1:] & flags[:-1] & (entity[1:] == entity[:-1])
    if rows is not None:
        cont[1:] &= np.diff(rows) == 1
    first = np.flatnonzero(flags & ~cont)
    nxt = np.zeros(n, bool)
    nxt[:-1] = cont[1:]
    last = np.flatnonzero(flags & ~nxt)
    return first.astype(np.int64), last.astype(np.int64)


def episodes(labels: RowLabels) -> tuple[np.ndarray, np.ndarray]:
    """Onset and last row of every episode (maximal run of positive rows of one entity)."""
    return runs(np.asarray(labels.target) > 0, labels.entity)


def zones(labels: RowLabels, onset: np.ndarray, last: np.ndarray, zone_rows: int | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per episode: the detection zone's first and last row, and the warning zone's first row (it ends at
    the episode's last row). Rows outside the entity are clipped away (the zone may then be empty: lo > hi)."""
    start = labels.entity_starts()[onset] if len(onset) else np.zeros(0, np.int64)
    if labels.mode == "event":
        width = labels.lookahead if zone_rows is None else zone_rows
        lo, hi = np.maximum(onset - width, start), onset - 1
        warn_lo = np.maximum(onset - max(width, labels.lookahead), start)
    else:
        lo = onset
        hi = last if zone_rows is None else np.minimum(onset + zone_rows - 1, last)
        warn_lo = onset
    return lo.astype(np.int64), hi.astype(np.int64), warn_lo.astype(np.int64)


def onset_mask(labels: RowLabels, ends: np.ndarray) -> np.ndarray:
    """True for windows whose entity is not already inside an episode when the window closes at ``ends``."""
    ends = np.asarray(ends, np.int64)
    target = np.asarray(labels.target)
    if labels.mode == "event":
        return target[ends] == 0
    prev = ends - 1
    first_row = prev < labels.entity_starts()[ends]
    return first_row | (target[np.maximum(prev, 0)] == 0)


def _test_days(labels: RowLabels, ends: np.ndarray) -> float:
    """Time the test windows cover: their count × the median step between consecutive rows of one entity."""
    t = labels.time[ends]
    same = labels.entity[ends][1:] == labels.entity[ends][:-1]
    steps = np.diff(t)[same & (np.diff(ends) == 1)]
    step = float(np.median(steps)) if len(steps) else 0.0
    return len(ends) * step / DAY_NS


def episode_metrics(labels: RowLabels, ends: np.ndarray, scores: np.ndarray, threshold: float,
                    zone_rows: int | None = None) -> dict[str, float]:
    """Episode recall, lead time, false alarms and onset PR-AUC/MCC of one model's test scores.

    ``ends`` are the row numbers (into ``labels``) of the scored windows' last rows, sorted as the series is.
    Undefined values (no counted episode, no alarm, one class among onset windows) are NaN.
    """
    ends = np.asarray(ends, np.int64)
    scores = np.asarray(scores, np.float64)
    if len(ends) != len(scores):
        raise ValueError(f"{len(ends)} window ends but {len(scores)} scores")
    if len(ends) and (ends.min() < 0 or ends.max() >= len(labels.target)):
        raise ValueError(f"window ends reach row {ends.max()}, but the series has {len(labels.target)} rows")
    if np.any(np.diff(ends) <= 0):
        raise ValueError("window ends must be strictly increasing (the series' own order)")
    alarm = scores >= threshold
    onset, last = episodes(labels)
    lo, hi, warn_lo = zones(labels, onset, last, zone_rows)

    # episodes that count, caught ones and their lead times
    alarm_rows = ends[alarm]
    n_in_zone = np.searchsorted(ends, hi, side="right") - np.searchsorted(ends, lo, side="left")
    counted = (hi >= lo) & (n_in_zone > 0)
    first_alarm_at = np.searchsorted(alarm_rows, lo, side="left")
    has_alarm = first_alarm_at < len(alarm_rows)
    first_alarm = np.where(has_alarm, alarm_rows[np.minimum(first_alarm_at, max(len(alarm_rows) - 1, 0))]
                           if len(alarm_rows) else 0, -1)
    caught = counted & has_alarm & (first_alarm <= hi)
    lead_rows = (onset - first_alarm)[caught]

    # alarm episodes and false alarms
    a_first, a_last = runs(alarm, labels.entity[ends], ends)
    a_lo, a_hi = ends[a_first], ends[a_last]
    # an alarm run [a_lo, a_hi] overlaps the warning zone [warn_lo, last] iff a_lo <= last and a_hi >= warn_lo;
    # warning zones of one series are disjoint and sorted, so the first zone ending at or after a_lo decides
    k = np.searchsorted(last, a_lo, side="left")
    kk = np.minimum(k, max(len(last) - 1, 0))
    overlaps = (k < len(last)) & (warn_lo[kk] <= a_hi) if len(last) else np.zeros(len(a_lo), bool)
    false = int(np.sum(~overlaps))

    n_counted, n_caught, n_alarms = int(counted.sum()), int(caught.sum()), len(a_lo)
    recall = n_caught / n_counted if n_counted else float("nan")
    precision = (n_alarms - false) / n_alarms if n_alarms else float("nan")
    f1 = (2 * precision * recall / (precision + recall)
          if np.isfinite(precision) and np.isfinite(recall) and precision + recall > 0
          else (0.0 if np.isfinite(precision) or np.isfinite(recall) else float("nan")))

    out: dict[str, float] = {
        "episodes": float(n_counted), "episodes_caught": float(n_caught), "episode_recall": recall,
        "alarm_episodes": float(n_alarms), "false_alarms": float(false), "episode_precision": precision,
        "episode_f1": f1,
        "lead_rows_median": float(np.median(lead_rows)) if len(lead_rows) else float("nan"),
        "lead_rows_p25": float(np.percentile(lead_rows, 25)) if len(lead_rows) else float("nan"),
        "lead_rows_p75": float(np.percentile(lead_rows, 75)) if len(lead_rows) else float("nan"),
        "lead_rows_min": float(lead_rows.min()) if len(lead_rows) else float("nan"),
        "lead_rows_max": float(lead_rows.max()) if len(lead_rows) else float("nan"),
    }
    if labels.time_is_datetime:
        lead_ns = (labels.time[onset] - labels.time[np.maximum(first_alarm, 0)])[caught]
        out["lead_hours_median"] = float(np.median(lead_ns)) / HOUR_NS if len(lead_ns) else float("nan")
        days = _test_days(labels, ends)
        out["false_alarms_per_day"] = false / days if days > 0 else float("nan")
    else:
        out["false_alarms_per_1k_windows"] = 1000.0 * false / len(ends) if len(ends) else float("nan")

    keep = onset_mask(labels, ends)
    y = _window_targets(labels, ends)[keep]
    s = scores[keep]
    two = len(np.unique(y)) == 2
    out["onset_windows"] = float(keep.sum())
    out["onset_pr_auc"] = float(average_precision_score(y, s)) if two else float("nan")
    out["onset_mcc"] = float(matthews_corrcoef(y, (s >= threshold).astype(int))) if len(y) else float("nan")
    return out


def _window_targets(labels: RowLabels, ends: np.ndarray) -> np.ndarray:
    """The target of each window by the definition: label[t], or any event in rows t+1 … t+H of the entity."""
    target = np.asarray(labels.target, np.int64)
    if labels.mode == "label":
        return target[ends]
    csum = np.concatenate([[0], np.cumsum(target)])
    stop = np.minimum(ends + labels.lookahead, labels.entity_stops()[ends])
    return ((csum[stop + 1] - csum[ends + 1]) > 0).astype(np.int64)


def choose_episode_threshold(labels: RowLabels, ends: np.ndarray, scores: np.ndarray,
                             zone_rows: int | None = None, candidates: int = 200) -> float:
    """The threshold maximising episode F1 on these (validation) windows; ties go to the highest threshold.

    At most ``candidates`` thresholds are tried: the distinct scores, thinned to evenly spaced quantiles."""
    values = np.unique(np.asarray(scores, np.float64))
    if len(values) == 0:
        return 0.5
    if len(values) > candidates:
        values = np.unique(np.quantile(values, np.linspace(0, 1, candidates)))
    best, best_t = -1.0, float(values[-1])
    for t in values[::-1]:  # highest first: a later (lower) threshold must be strictly better
        f1 = episode_metrics(labels, ends, scores, float(t), zone_rows)["episode_f1"]
        if np.isfinite(f1) and f1 > best + 1e-12:
            best, best_t = f1, float(t)
    return best_t


def aggregate_episodes(per_fold: list[dict[str, float]]) -> dict[str, float]:
    """Mean and standard deviation over folds of every episode metric (NaN folds left out), and the counts summed."""
    out: dict[str, float] = {}
    keys = sorted({k for m in per_fold for k in m})
    for key in keys:
        values = np.array([m.get(key, np.nan) for m in per_fold], np.float64)
        finite = values[np.isfinite(values)]
        out[f"{key}_mean"] = float(finite.mean()) if len(finite) else float("nan")
        out[f"{key}_std"] = float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")
    for count in ("episodes", "episodes_caught", "alarm_episodes", "false_alarms"):
        if any(count in m for m in per_fold):
            out[f"{count}_total"] = float(sum(m.get(count, 0.0) for m in per_fold))
    if out.get("episodes_total"):
        out["episode_recall_pooled"] = out["episodes_caught_total"] / out["episodes_total"]
    return out
