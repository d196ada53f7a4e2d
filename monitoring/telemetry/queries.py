"""Placeholder for the telemetry part's queries (issue 14, part T owns this module).

Only the signature the alert rules call is here, so the alerts part runs on its own branch; the
telemetry part's real module replaces this file at merge.
"""

import datetime
import uuid


def window_values(
    metric: str, window: datetime.timedelta, now: datetime.datetime
) -> dict[uuid.UUID, float]:
    """Each device's average of `metric` over (now - window, now]; placeholder: no telemetry."""
    return {}
