"""Retry policies shared by the tasks."""
from __future__ import annotations

from prefect.tasks import exponential_backoff

from lstm_core.data import DataError


def retry_unless_bad_input(task, task_run, state) -> bool:
    """Retry transient failures, never bad input: the same data fails the same way."""
    try:
        state.result()
    except (DataError, ValueError):  # ContractError is a ValueError too
        return False
    except Exception:
        return True
    return True


IO_RETRY = {"retries": 3, "retry_delay_seconds": exponential_backoff(backoff_factor=2),
            "retry_jitter_factor": 0.5, "retry_condition_fn": retry_unless_bad_input}
COMPUTE_RETRY = {"retries": 1, "retry_delay_seconds": 1, "retry_condition_fn": retry_unless_bad_input}
