"""Real public datasets bundled with lstm_core (gzip copies of the original bytes, sha256-checked on load).

- ``load_cmapss_fd001``: NASA C-MAPSS turbofan FD001, label = engine fails within 30 cycles.
- ``load_beijing_pm25``: Beijing PM2.5 hourly, event = observed pm2.5 >= 300 ug/m3.

Nothing is read at import time; see ``data/PROVENANCE.md`` for sources, licences and measured facts.
"""

from lstm_core.datasets.beijing import EVENT_THRESHOLD, load_beijing_pm25
from lstm_core.datasets.cmapss import (
    FAILURE_WITHIN,
    SENSOR_COLUMNS,
    CmapssFD001,
    last_window_test_protocol,
    load_cmapss_fd001,
)

__all__ = [
    "EVENT_THRESHOLD",
    "FAILURE_WITHIN",
    "SENSOR_COLUMNS",
    "CmapssFD001",
    "last_window_test_protocol",
    "load_beijing_pm25",
    "load_cmapss_fd001",
]
