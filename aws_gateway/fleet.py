"""Which devices are on the AWS gateway, as a filter on Device."""

from django.db.models import Q

from aws_gateway.wiring import AWS
from devices.models import Device


def on_aws() -> Q:
    """Devices on AWS IoT Core (nothing while Device has no gateway field: before the registry
    part's migration every device is on the portal's broker)."""
    if not any(field.name == "gateway" for field in Device._meta.get_fields()):
        return Q(pk__in=[])
    return Q(gateway=AWS)
