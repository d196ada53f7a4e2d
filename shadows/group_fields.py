"""`reported.<key>...` in dynamic group filters: values the device reported in its classic shadow.

Registered with devices.group_filters from ShadowsConfig.ready, so devices never imports shadows.
"""

from django.db.models import Exists, OuterRef

from devices.group_filters import json_condition


def reported(keys: list[str], op: str, value):
    """Devices whose classic shadow's reported state satisfies the condition (a semi-join on
    the (device, name) unique index)."""
    from shadows.models import Shadow

    condition = json_condition("reported_state", keys, op, value)
    return Exists(Shadow.objects.filter(condition, device=OuterRef("pk"), name=""))
