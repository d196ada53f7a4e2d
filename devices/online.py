"""Which devices count as online: one door, so the filter language, the querysets, the admin's
column and the API agree.

devices' own definition is "heard from within settings.DEVICE_ONLINE_WINDOW_SECONDS" (last_seen).
An app that knows better — monitoring's presence, kept per connection — replaces it from its
AppConfig.ready with `define(condition)`; devices never imports that app.
"""

from collections.abc import Callable

from django.conf import settings
from django.db.models import BooleanField, Case, Q, Value, When
from django.utils import timezone

Condition = Callable[[], Q]  # a two-valued condition on Device (never NULL)

_defined: list[tuple[str, Condition]] = []


class OnlineAlreadyDefined(Exception):
    """A second app tried to define what online means."""


def define(condition: Condition) -> None:
    """Let `condition()` decide which devices are online (once, at start-up)."""
    name = f"{condition.__module__}.{condition.__qualname__}"
    if _defined and _defined[0][0] != name:
        raise OnlineAlreadyDefined(f"online is defined by {_defined[0][0]}, not {name}")
    _defined[:] = [(name, condition)]


def online_since():
    return timezone.now() - timezone.timedelta(seconds=settings.DEVICE_ONLINE_WINDOW_SECONDS)


def seen_lately() -> Q:
    """devices' default: heard from within the online window (a NULL last_seen is offline)."""
    return Q(last_seen__gte=online_since(), last_seen__isnull=False)


def condition() -> Q:
    """The devices online now, as a condition on Device."""
    return _defined[0][1]() if _defined else seen_lately()


def annotation() -> Case:
    """`online` as a column of a device query (`Device.is_online` reads it when present);
    true or false, never NULL (a condition over an outer join could be)."""
    return Case(
        When(condition(), then=Value(True)), default=Value(False), output_field=BooleanField()
    )
