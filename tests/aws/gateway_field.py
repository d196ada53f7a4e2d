"""Until the registry part (G1) lands `Device.gateway` with its migration, the AWS tests add the
field to the model and its column to the test database themselves, without a migration. Once
the real field exists, this does nothing."""

from django.db import connection, models

from devices.models import Device
from fleetportal import gateways


def install() -> None:
    if any(field.name == "gateway" for field in Device._meta.get_fields()):
        return
    field = models.CharField(
        max_length=32, default=gateways.MOSQUITTO, db_default=gateways.MOSQUITTO
    )
    Device.add_to_class("gateway", field)
    with connection.cursor() as cursor:
        cursor.execute(
            f"ALTER TABLE {Device._meta.db_table} ADD COLUMN IF NOT EXISTS gateway "
            "varchar(32) NOT NULL DEFAULT 'mosquitto'"
        )


def put_on_aws(*devices: Device) -> None:
    """Move devices to the AWS gateway (G1's service will do this with its sync)."""
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(gateway="aws")
    for device in devices:
        device.gateway = "aws"
