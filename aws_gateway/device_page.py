"""The device page of a device on AWS: its shadow changes still on their way to AWS, with why
they wait, and the last change AWS refused (a section on devices.pages.DEVICE_PAGE, on the
Shadow tab). Devices on the portal's broker get nothing and cost no query."""

from aws_gateway.models import ShadowPush
from aws_gateway.shadow_push import REFUSED_EVENT
from aws_gateway.wiring import AWS
from devices.pages import DEVICE_PAGE
from fleetportal import gateways
from fleetportal.pages import Section

SHOWN = 5


def _context(request, device) -> dict | None:
    if gateways.of(device) != AWS:
        return None
    waiting = list(ShadowPush.objects.filter(device=device).order_by("id")[: SHOWN + 1])
    refused = device.events.filter(event_type=REFUSED_EVENT).order_by("-created_at").first()
    return {"waiting": waiting[:SHOWN], "more": len(waiting) > SHOWN, "refused": refused}


def register() -> None:
    DEVICE_PAGE.add_section(
        Section(
            "aws-state",
            "admin/aws_gateway/device_state.html",
            _context,
            permission="shadows.view_shadow",
            order=90,
            tab="shadow",
        )
    )
