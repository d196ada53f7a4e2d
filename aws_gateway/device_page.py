"""The device page's AWS IoT Core sections (on devices.pages.DEVICE_PAGE), shown for devices on
the AWS gateway only — devices on the portal's broker get nothing and cost no query:

- on the Overview tab, where the device's thing stands — in sync, waiting, or failing with AWS's
  error and the time of the next attempt — and its certificates as AWS knows them;
- on the Shadow tab, its shadow changes still on their way to AWS, with why they wait, and the
  last change AWS refused.
"""

from aws_gateway.models import RegisteredCertificate, ShadowPush, ThingSync
from aws_gateway.shadow_push import REFUSED_EVENT
from aws_gateway.wiring import AWS
from devices.pages import DEVICE_PAGE
from fleetportal import gateways
from fleetportal.pages import Section

CERTIFICATES_SHOWN = 10
CHANGES_SHOWN = 5


def _thing_context(request, device) -> dict | None:
    if gateways.of(device) != AWS:
        return None  # a device moved off AWS: its thing's retirement is in the Gateways list
    row = ThingSync.objects.filter(device=device).first()
    certificates = list(
        RegisteredCertificate.objects.filter(credential__device=device)
        .select_related("credential")
        .order_by("-registered_at")[:CERTIFICATES_SHOWN]
    )
    return {"thing_sync": row, "aws_certificates": certificates}


def _state_context(request, device) -> dict | None:
    if gateways.of(device) != AWS:
        return None
    waiting = list(ShadowPush.objects.filter(device=device).order_by("id")[: CHANGES_SHOWN + 1])
    refused = device.events.filter(event_type=REFUSED_EVENT).order_by("-created_at").first()
    return {
        "waiting": waiting[:CHANGES_SHOWN],
        "more": len(waiting) > CHANGES_SHOWN,
        "refused": refused,
    }


def register() -> None:
    DEVICE_PAGE.add_section(
        Section(
            "aws",
            "admin/aws_gateway/device_section.html",
            _thing_context,
            permission="aws_gateway.view_thingsync",
            order=5,
            tab="overview",
        )
    )
    DEVICE_PAGE.add_section(
        Section(
            "aws-state",
            "admin/aws_gateway/device_state.html",
            _state_context,
            permission="shadows.view_shadow",
            order=90,
            tab="shadow",
        )
    )
