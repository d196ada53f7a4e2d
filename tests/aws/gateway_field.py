"""Moving test devices between gateways."""

from devices.models import Device


def put_on_aws(*devices: Device) -> None:
    """Move devices to the AWS gateway."""
    Device.objects.filter(pk__in=[d.pk for d in devices]).update(gateway="aws")
    for device in devices:
        device.gateway = "aws"
