"""Presence as conditions on Device, for devices.online (the filter language's `online`, the
device list's column and filter)."""

from django.db.models import Q


def online_condition() -> Q:
    """Online = its presence row says so; no row = never connected = offline."""
    return Q(presence__online=True)
