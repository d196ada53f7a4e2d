"""The job form on the device list's filtered set ("Run a job on these devices"): the list's
query string travels as `device_filter`, and the form shows what it reaches — "the 1,234
devices matching device type: sensor, firmware version: 1.9.3" — in place of the device and
group pickers. The filter stays in a hidden input, so a refused post keeps it with everything
else the operator typed. Counting, the cap and every refusal are firmware.jobs.filter_targets'.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from devices import device_list
from firmware import jobs

PARAMETER = "device_filter"
SNAPSHOT_NOTE = (
    "A snapshot: the devices in service that match the list's filter when you save are the "
    "job's targets; devices that match later do not get it (for those, save the filter as a "
    "dynamic group and target the group). Decommissioned devices are left out."
)


def given(request: HttpRequest) -> bool:
    """Is the job form opened (or posted) on a device-list filter? Present counts, even empty:
    an unfiltered list is refused on the form rather than turned into the pickers."""
    return PARAMETER in request.GET or PARAMETER in request.POST


def job_form_url(query: str) -> str:
    """The job form on the device list's current filter (its urlencoded query string)."""
    return reverse("admin:firmware_job_add") + "?" + urlencode({PARAMETER: query})


def list_url(text: str) -> str:
    return reverse("admin:devices_device_changelist") + "?" + text.lstrip("?")


class FilterTargetsWidget(forms.Widget):
    """The filter as a hidden input, and what it reaches now (or why it is refused), with the
    way back to the list to change it."""

    summary = ""
    refused = False

    def render(self, name, value, attrs=None, renderer=None):
        value = value or ""
        return format_html(
            '<div class="filter-targets-box"><input type="hidden" name="{}" value="{}" id="{}">'
            '<p id="filter-targets" class="filter-targets{}">{}</p>'
            '<a href="{}" id="filter-targets-list">Change the filter in the device list</a>'
            "</div>",
            name,
            value,
            (attrs or {}).get("id", ""),
            " errornote" if self.refused else "",
            self.summary,
            list_url(value),
        )


def devices(count: int) -> str:
    return f"{count:,} device" + ("" if count == 1 else "s")


def field() -> forms.CharField:
    return forms.CharField(
        required=False,
        label="Devices",
        max_length=device_list.MAX_QUERY,
        widget=FilterTargetsWidget,
    )


def summarize(text: str) -> tuple[str, str]:
    """(what the filter reaches now, "") or ("", why it is refused) — the service's words."""
    try:
        chosen = jobs.filter_targets(text)
    except ValidationError as refusal:
        return "", message(refusal.message_dict["targets"][0])
    return f"The {devices(chosen.count)} matching {chosen.description}.", ""


def message(text: str) -> str:
    """A service refusal of the filter ("filter: …") as the field shows it."""
    rest = text.removeprefix("filter: ")
    return rest[:1].upper() + rest[1:]


def show(form: forms.Form, text: str) -> str:
    """Fill the form's filter widget; returns the refusal ("" when the filter is good)."""
    summary, refusal = summarize(text)
    widget = form.fields[PARAMETER].widget
    # Bound and refused: the field's error list says it; the widget would say it twice.
    widget.summary = summary or ("" if form.is_bound else refusal)
    widget.refused = bool(refusal) and not form.is_bound
    return refusal
