"""The device page's AWS IoT Core section (on the Overview tab, a section on
devices.pages.DEVICE_PAGE): where the device's thing stands — in sync, waiting, or failing with
AWS's error and the time of the next attempt — and its certificates as AWS knows them. Shown for
devices on the AWS gateway and for those that were (their thing to retire)."""

from aws_gateway.models import RegisteredCertificate, ThingSync
from aws_gateway.wiring import AWS
from devices.pages import DEVICE_PAGE
from fleetportal.pages import Section

CERTIFICATES_SHOWN = 10


def _context(request, device) -> dict | None:
    row = ThingSync.objects.filter(device=device).first()
    if row is None and device.gateway != AWS:
        return None
    certificates = list(
        RegisteredCertificate.objects.filter(credential__device=device)
        .select_related("credential")
        .order_by("-registered_at")[:CERTIFICATES_SHOWN]
    )
    return {"thing_sync": row, "aws_certificates": certificates}


def register() -> None:
    DEVICE_PAGE.add_section(
        Section(
            "aws",
            "admin/aws_gateway/device_section.html",
            _context,
            permission="aws_gateway.view_thingsync",
            order=5,
            tab="overview",
        )
    )
