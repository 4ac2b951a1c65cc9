"""Beijing PM2.5 (UCI, US Embassy site, hourly 2010-2014), bundled, with a rare-event label.

The event is "the OBSERVED pm2.5 of this hour is >= ``threshold``"; a missing reading counts as no event,
and a forward-filled value never creates one. ``pm25`` itself is forward-filled over short gaps
(past values only) and hours still missing after that are dropped, so the returned hourly series has
gaps in time; a windowing routine must not build windows across them (its ``max_gap`` handles this).
Source, checksums and measured facts: ``lstm_core/datasets/data/PROVENANCE.md``.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from lstm_core.datasets._bundled import read_bundled

EVENT_THRESHOLD = 300.0
FFILL_LIMIT = 3

WIND_DIRECTIONS: list[str] = ["NE", "NW", "SE", "cv"]
WEATHER_COLUMNS: list[str] = ["DEWP", "TEMP", "PRES", "Iws", "Is", "Ir"]
COLUMNS: list[str] = ["time", "pm25", *WEATHER_COLUMNS, *(f"wind_{d}" for d in WIND_DIRECTIONS), "event"]

_FILE = "PRSA_data_2010.1.1-2014.12.31.csv.gz"
_FILE_SHA256 = "4127f868775e31b3956522adc0ec75af8937dde6a3896e8beed3a376c6d27f1c"


def _read_raw() -> pd.DataFrame:
    """Parse the bundled CSV as published (``NA`` = missing), one row per hour in time order."""
    raw = pd.read_csv(io.BytesIO(read_bundled(_FILE, _FILE_SHA256)), na_values=["NA"])
    time = pd.to_datetime(raw[["year", "month", "day", "hour"]]).astype("datetime64[ns]")
    if not time.is_monotonic_increasing or time.duplicated().any():
        raise ValueError(f"{_FILE}: timestamps are not strictly increasing")
    unknown = set(raw["cbwd"].unique()) - set(WIND_DIRECTIONS)
    if unknown:
        raise ValueError(f"{_FILE}: unexpected wind directions {sorted(unknown)}")
    return raw.assign(time=time)


def _one_hot_wind(cbwd: pd.Series) -> pd.DataFrame:
    """Encode the combined wind direction as float 0/1 columns wind_NE, wind_NW, wind_SE, wind_cv."""
    return pd.DataFrame(
        {f"wind_{d}": (cbwd == d).to_numpy(dtype=np.float64) for d in WIND_DIRECTIONS}, index=cbwd.index
    )


def load_beijing_pm25(threshold: float = EVENT_THRESHOLD, ffill_limit: int = FFILL_LIMIT) -> pd.DataFrame:
    """Load the hourly series with ``event`` = observed pm2.5 >= ``threshold``; short pm2.5 gaps forward-filled.

    ``pm25`` is forward-filled over at most ``ffill_limit`` consecutive missing hours (0 disables filling;
    a longer gap gets only its first ``ffill_limit`` hours filled); rows still missing pm2.5 are dropped,
    leaving gaps in ``time``. ``event`` is computed from the observed values, before filling.
    """
    if ffill_limit < 0:
        raise ValueError(f"ffill_limit must be >= 0, got {ffill_limit}")
    raw = _read_raw()
    observed = raw["pm2.5"].astype(np.float64)
    event = (observed >= threshold).astype(np.int64)  # NaN >= x is False: missing counts as no event
    pm25 = observed.ffill(limit=ffill_limit) if ffill_limit > 0 else observed
    frame = pd.concat(
        [
            pd.DataFrame({"time": raw["time"], "pm25": pm25}),
            raw[WEATHER_COLUMNS].astype(np.float64),
            _one_hot_wind(raw["cbwd"]),
            pd.DataFrame({"event": event}),
        ],
        axis=1,
    )
    return frame[pm25.notna()].reset_index(drop=True)[COLUMNS]
