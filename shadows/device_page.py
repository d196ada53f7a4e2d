"""The device page's Shadow tab (a section on devices.pages.DEVICE_PAGE: devices never imports
shadows) and its desired-state form.

The tab shows one shadow at a time — the classic one, or the named one picked from the list
(?shadow=<name>) — with desired / reported / delta, its history a page at a time
(?history_before=<version>), and the desired form of the shadow page (shadows.admin): the same
service call with the version the page showed, so a stale page gets the service's conflict
message, with the same permissions as the REST API (devices.view_device + shadows.view_shadow
to see, shadows.change_shadow to edit; never the `config` shadow, which configuration writes).
Its state block is fetched again when the shadow changes ({"type": "shadow.changed"})."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from devices.models import Device
from devices.pages import DEVICE_PAGE, render_device_page
from fleetportal.actors import actor_for_request
from fleetportal.pages import Section
from shadows import services
from shadows.configuration import CONFIG_SHADOW
from shadows.configuration import services as configuration
from shadows.models import Shadow

SHADOWS_SHOWN = 20
HISTORY_PER_PAGE = 10
VIEW = ("devices.view_device", "shadows.view_shadow")
EDIT = "shadows.change_shadow"
PUSH = "shadows.change_configvalue"


def segment(name: str) -> str:
    return name or services.CLASSIC_SEGMENT


def _section(request, device) -> dict:
    from shadows.admin import DesiredForm, history_rows, pretty

    shadows = list(Shadow.objects.filter(device=device).order_by("name")[: SHADOWS_SHOWN + 1])
    wanted = request.GET.get("shadow", services.CLASSIC_SEGMENT)
    shown = shadows[:SHADOWS_SHOWN]
    selected = next((s for s in shown if segment(s.name) == wanted), shown[0] if shown else None)
    context = {
        "shadows": [(s, segment(s.name)) for s in shown],
        "more_shadows": len(shadows) > SHADOWS_SHOWN,
        "shadow": selected,
    }
    if selected is None:
        return context
    history, older = _history(selected, request.GET.get("history_before"))
    can_edit = request.user.has_perm(EDIT) and selected.name != CONFIG_SHADOW
    refused = getattr(request, "refused_forms", {}).get(f"desired:{selected.name}")
    initial = {"desired": pretty(selected.desired_state), "version": selected.version}
    return {
        **context,
        "segment": segment(selected.name),
        "desired": pretty(selected.desired_state),
        "reported": pretty(selected.reported_state),
        "delta": pretty(services.delta_of(selected) if selected.live else {}),
        "history": history_rows(history),
        "history_older": older,
        "history_paged": "history_before" in request.GET,
        "desired_form": (refused or DesiredForm(initial=initial)) if can_edit else None,
        "owned_by_configuration": selected.name == CONFIG_SHADOW,
        "device_is_open": not device.is_decommissioned,
    }


def _history(shadow: Shadow, before: str | None) -> tuple[list, int | None]:
    """One page of the shadow's versions, newest first (shadowhistory_shadow_version)."""
    entries = shadow.history.order_by("-version", "-id")
    if before and before.isdigit() and len(before) < 12:
        entries = entries.filter(version__lt=int(before))
    rows = list(entries[: HISTORY_PER_PAGE + 1])
    older = rows[HISTORY_PER_PAGE - 1].version if len(rows) > HISTORY_PER_PAGE else None
    return rows[:HISTORY_PER_PAGE], older


@require_POST
def save_desired(request, device_pk, name: str):
    """The tab's form: through the shadow page's own save (shadows.admin.ShadowAdmin), then
    back to the tab; refused input is shown again on the page with what was typed."""
    from shadows.admin import REFUSED, DesiredForm, ShadowAdmin

    name = services.CLASSIC if name == services.CLASSIC_SEGMENT else name
    shadow = Shadow.objects.select_related("device").filter(device=device_pk, name=name).first()
    if shadow is None:
        raise Http404("No such shadow.")
    shadow_admin = ShadowAdmin(Shadow, admin.site)
    allowed = request.user.has_perms((*VIEW, EDIT)) and name != CONFIG_SHADOW
    if not allowed or shadow.device.is_decommissioned:
        raise PermissionDenied
    form = DesiredForm(request.POST)
    if not form.is_valid() or shadow_admin._save_desired(request, shadow, form) == REFUSED:
        return render_device_page(
            request,
            device_pk,
            refused={f"desired:{name}": form},
            tab="shadow",
            query={"shadow": segment(name)},
        )
    page = reverse("admin:devices_device_change", args=[device_pk])
    return HttpResponseRedirect(f"{page}?{urlencode({'shadow': segment(name)})}#tab-shadow")


@require_POST
def push_configuration(request, device_pk):
    """The Configuration tab's "Push again" (shadows.configuration.services.repush)."""
    device = Device.objects.filter(pk=device_pk).first()
    if device is None:
        raise Http404("No such device.")
    if not request.user.has_perms(("devices.view_device", PUSH)) or device.is_decommissioned:
        raise PermissionDenied
    if configuration.repush(device, actor=actor_for_request(request)):
        messages.success(request, f"Configuration pushed again to {device.device_id}.")
    else:
        messages.info(request, f"{device.device_id} already reports its whole configuration.")
    page = reverse("admin:devices_device_change", args=[device_pk])
    return HttpResponseRedirect(page + "#tab-configuration")


def register() -> None:
    DEVICE_PAGE.add_section(
        Section(
            "shadow", "admin/shadows/device_shadow.html", _section, permission=VIEW[1], order=10
        )
    )
