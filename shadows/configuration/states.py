"""A configuration key's state on a device, decided here for the admin, the API and the drift
page alike (shadows.choices.ConfigState):

- not pushed yet: no DeviceConfiguration row holds the effective value's version and source
  (a big group is rendered by Celery after the commit);
- applied: the device reported exactly the pushed value;
- drift: pushed more than CONFIG_DRIFT_MINUTES ago, not applied, and the device has connected
  since it was registered (one that never connected has had no chance: it is pending);
- pending: pushed and not applied, otherwise.

The rule is SQL (`drifting`, `state_of_row`) so the drift page and the group summaries count
with set-based queries, and a device page or the API annotates its rows in the same query.
"""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Case, CharField, Q, Value, When
from django.utils import timezone

from shadows.choices import ConfigState
from shadows.configuration.layering import Effective
from shadows.models import DeviceConfiguration


def drift_cutoff(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) - timedelta(minutes=settings.CONFIG_DRIFT_MINUTES)


def drifting(cutoff: datetime) -> Q:
    """DeviceConfiguration rows in the drift state."""
    return Q(applied=False, pushed_at__lt=cutoff, device__last_seen__isnull=False)


def state_of_row(cutoff: datetime) -> Case:
    """The state of a pushed row, as an annotation."""
    return Case(
        When(applied=True, then=Value(ConfigState.APPLIED)),
        When(drifting(cutoff), then=Value(ConfigState.DRIFT)),
        default=Value(ConfigState.PENDING),
        output_field=CharField(),
    )


def holds(row: DeviceConfiguration | None, entry: Effective) -> bool:
    """Whether `row` records the push of this effective value (its version and source)."""
    return (
        row is not None
        and row.version == entry.version
        and row.source_group_id == entry.source_group_id
    )


def key_states(
    device: Any, configuration: dict[str, Effective], now: datetime | None = None
) -> dict[str, tuple[ConfigState, DeviceConfiguration | None]]:
    """Each effective key's state with the row that records its push (None if not pushed):
    one query."""
    rows = DeviceConfiguration.objects.filter(device=device).annotate(
        state=state_of_row(drift_cutoff(now))
    )
    pushed = {row.config_key: row for row in rows}
    states = {}
    for key, entry in configuration.items():
        row = pushed.get(key)
        if holds(row, entry):
            states[key] = (ConfigState(row.state), row)
        else:
            states[key] = (ConfigState.NOT_PUSHED, None)
    return states
