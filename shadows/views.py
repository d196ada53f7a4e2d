"""Server-rendered operator pages of the shadows app (in the admin's look).

The drift page: devices whose configuration was pushed more than CONFIG_DRIFT_MINUTES ago and
is still not reported back, with the keys that differ, and per-group applied / pending / drift.
"""

import json

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ValidationError
from django.template.response import TemplateResponse

from devices.models import DeviceGroup
from fleetportal.paginators import EstimatedCountPaginator
from shadows.configuration import services

DRIFT_PAGE_SIZE = 50


@login_required(login_url="admin:login")
@permission_required("shadows.view_deviceconfiguration", raise_exception=True)
def drift(request):
    groups = list(services.configured_groups().order_by("name"))
    group = _selected_group(request.GET.get("group"), groups)
    devices = (
        services.drifted_devices(group).order_by("device_id").only("pk", "device_id", "status")
    )
    paginator = EstimatedCountPaginator(devices, DRIFT_PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    details = services.drift_details(list(page.object_list))
    context = {
        **admin.site.each_context(request),
        "title": "Configuration drift",
        "groups": groups,
        "group": group,
        "summary": [(g, services.group_summary(g)) for g in groups],
        "page": page,
        "devices": [(device, _displayed(details[device.pk])) for device in page.object_list],
        "drift_minutes": settings.CONFIG_DRIFT_MINUTES,
    }
    return TemplateResponse(request, "shadows/drift.html", context)


def _selected_group(pk: str | None, groups: list[DeviceGroup]) -> DeviceGroup | None:
    """The group to filter by: one that sets configuration, or any group linked by its page."""
    if not pk:
        return None
    try:
        group = DeviceGroup.objects.filter(pk=pk).first()
    except ValidationError:
        group = None
    if group is not None and group not in groups:
        groups.insert(0, group)
    return group


def _displayed(keys: list[dict]) -> list[dict]:
    for key in keys:
        key["desired_text"] = json.dumps(key["desired"], sort_keys=True, ensure_ascii=False)
        if key["reported_present"]:
            key["reported_text"] = json.dumps(key["reported"], sort_keys=True, ensure_ascii=False)
    return keys
