"""The device page as one page with tabs: which tab each section of devices.pages.DEVICE_PAGE
goes on, and the sections devices itself adds — the overview, the certificates and the events
timeline. The apps above add theirs (shadow, configuration, jobs, telemetry, alerts, presence)
the same way, so devices never imports them.

Every section reads a bounded, constant number of rows: newest first and paged by a keyset
(`?events_before=`), so the page's query count does not grow with a device's history.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django import forms
from django.utils.safestring import SafeString

from devices import credentials, groups
from devices.models import Device, DeviceCredential, DeviceEvent
from devices.pages import DEVICE_PAGE
from fleetportal.pages import Section

# (name, label) in the order an operator reads a device; a section naming another tab gets a
# tab of its own after these.
TABS = (
    ("overview", "Overview"),
    ("shadow", "Shadow"),
    ("configuration", "Configuration"),
    ("credentials", "Credentials"),
    ("jobs", "Jobs & rollouts"),
    ("telemetry", "Telemetry"),
    ("events", "Events"),
    ("alerts", "Alerts"),
)
EVENTS_PER_PAGE = 20
CREDENTIALS_SHOWN = 10


@dataclass
class Tab:
    name: str
    label: str
    sections: list[SafeString] = field(default_factory=list)


def tabs(request, device: Device) -> list[Tab]:
    """The page's tabs with the sections the user may see; a tab with nothing is left out,
    except the overview, which also holds the device's own form."""
    by_name = {name: Tab(name, label) for name, label in TABS}
    for section, html in DEVICE_PAGE.rendered(request, device):
        tab = by_name.setdefault(section.tab_name, Tab(section.tab_name, section.tab_name.title()))
        tab.sections.append(html)
    return [tab for tab in by_name.values() if tab.sections or tab.name == "overview"]


# -- overview -----------------------------------------------------------------------------------


def _overview(request, device: Device) -> dict:
    dynamic, more = groups.dynamic_groups_of(device)
    return {
        "dynamic_groups": dynamic,
        "more_dynamic_groups": more,
        "location": pretty(device.location) if device.location else "",
        "metadata": pretty(device.metadata) if device.metadata else "",
    }


def pretty(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


# -- credentials --------------------------------------------------------------------------------


class CsrForm(forms.Form):
    """A certificate from a pasted CSR: issued as the API issues it, or as a rotation."""

    # No length cap of its own: the CSR check states the API's (devices.pki.csr.MAX_CSR_BYTES),
    # and Django's field refuses NUL bytes as DRF does, in the same words.
    csr = forms.CharField(
        label="CSR (PEM)",
        strip=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 64, "spellcheck": "false"}),
        help_text="A PKCS#10 request whose common name is this device's ID; the private key "
        "stays on the device.",
    )


class RevokeForm(forms.Form):
    reason = forms.ChoiceField(
        choices=credentials.RevocationReason.choices,
        initial=credentials.RevocationReason.UNSPECIFIED,
    )


def refused_form(request, key: str) -> forms.Form | None:
    """A form this page refused on a post (devices.pages.render_device_page), shown again with
    what the operator typed and its errors instead of a blank one."""
    return getattr(request, "refused_forms", {}).get(key)


def _credentials(request, device: Device) -> dict:
    rows = list(
        DeviceCredential.objects.filter(device=device)
        .select_related("replaces")
        .order_by("-created_at")[: CREDENTIALS_SHOWN + 1]
    )
    user, open_device = request.user, not device.is_decommissioned
    return {
        "credentials": rows[:CREDENTIALS_SHOWN],
        "more_credentials": len(rows) > CREDENTIALS_SHOWN,
        "can_issue": open_device and user.has_perm("devices.add_devicecredential"),
        "can_revoke": user.has_perm("devices.change_devicecredential"),
        "csr_form": refused_form(request, "csr") or CsrForm(),
        "revoke_form": RevokeForm(),
    }


# -- events -------------------------------------------------------------------------------------


def events_page(device: Device, before: str | None) -> tuple[list[DeviceEvent], str | None]:
    """One page of the timeline, newest first, older than the `before` cursor; and the cursor
    of the next page (None: no older events). Served by event_device_created_idx."""
    events = DeviceEvent.objects.filter(device=device).order_by("-created_at", "-pk")
    anchor = parse_cursor(before)
    if anchor is not None:
        at, pk = anchor
        events = events.filter(created_at__lte=at).exclude(created_at=at, pk__gte=pk)
    rows = list(events[: EVENTS_PER_PAGE + 1])
    if len(rows) <= EVENTS_PER_PAGE:
        return rows, None
    last = rows[EVENTS_PER_PAGE - 1]
    return rows[:EVENTS_PER_PAGE], f"{(last.created_at - EPOCH) // MICROSECOND}_{last.pk}"


EPOCH, MICROSECOND = datetime(1970, 1, 1, tzinfo=UTC), timedelta(microseconds=1)


def parse_cursor(text: str | None) -> tuple[datetime, int] | None:
    """ "<epoch microseconds>_<event pk>" (exact: no float rounding), or None for anything else,
    which shows the first page."""
    try:
        micros, pk = (text or "").split("_")
        return EPOCH + int(micros[:20]) * MICROSECOND, int(pk[:20])
    except (ValueError, OverflowError):
        return None


def summarize(data: dict, width: int = 120) -> str:
    text = json.dumps(data, sort_keys=True, default=str) if data else ""
    return text if len(text) <= width else text[: width - 1] + "…"


def _events(request, device: Device) -> dict:
    before = request.GET.get("events_before")
    rows, older = events_page(device, before)
    return {
        "events": [(event, summarize(event.event_data)) for event in rows],
        "events_older": older,
        "events_paged": bool(before),
        "events_per_page": EVENTS_PER_PAGE,
    }


def register() -> None:
    for section in (
        Section("overview", "admin/devices/device/overview.html", _overview, order=0),
        Section(
            "credentials",
            "admin/devices/device/credentials.html",
            _credentials,
            permission="devices.view_devicecredential",
            order=30,
        ),
        Section("events", "admin/devices/device/events.html", _events, order=60),
    ):
        DEVICE_PAGE.add_section(section)
