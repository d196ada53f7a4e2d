"""The console's navigation: the admin's models and the console's own pages, grouped the way an
operator thinks of the fleet (Fleet, Identity, State & configuration, Firmware, Health) rather
than by the Python app that happens to hold each model.

fleetportal imports no app above it, so the groups name models by their label
("devices.device") and pages by their URL name; a model or page that is not installed is
simply absent, and a registered model no group names lands in "Other" — never hidden.
"""

from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse


@dataclass(frozen=True)
class Page:
    """A console page outside the admin's model lists (the fleet summary, the drift page)."""

    name: str
    url_name: str
    permission: str


@dataclass(frozen=True)
class Group:
    key: str  # CSS class and element id: app-<key>
    title: str
    entries: tuple[str | Page, ...]  # model labels and pages, in the order shown


GROUPS = (
    Group(
        "fleet",
        "Fleet",
        (
            "devices.device",
            "devices.devicegroup",
            "devices.provisioningtemplate",
            "devices.bulkprovisioningjob",
            "devices.bulkdeviceaction",
            "devices.deviceevent",
        ),
    ),
    Group(
        "identity",
        "Identity",
        (
            "devices.devicecredential",
            "fleetportal.apitoken",
            "auth.user",
            "auth.group",
            "fleetportal.securityevent",
        ),
    ),
    Group(
        "state",
        "State & configuration",
        (
            "shadows.shadow",
            "shadows.configvalue",
            "shadows.deviceconfiguration",
            "shadows.configchange",
            "aws_gateway.shadowpush",
            Page("Configuration drift", "shadows:config-drift", "shadows.view_deviceconfiguration"),
        ),
    ),
    Group(
        "firmware",
        "Firmware",
        (
            "firmware.firmwareversion",
            "firmware.job",
            "firmware.jobexecution",
            "firmware.jobtemplate",
            "firmware.rollout",
            "aws_gateway.awsjob",
        ),
    ),
    Group(
        "health",
        "Health",
        (
            Page("Fleet summary", "fleet-page", "monitoring.view_fleetsnapshot"),
            "monitoring.alert",
            "monitoring.alertrule",
            "monitoring.presence",
            "monitoring.devicetypehealth",
            "monitoring.webhookdelivery",
            "aws_gateway.linkstatus",
        ),
    ),
    Group(
        "gateways",
        "Gateways",
        (
            "devices.devicetypegateway",
            "aws_gateway.thingsync",
            "aws_gateway.fleetimport",
        ),
    ),
)
OTHER = Group("other", "Other", ())


def grouped(request: HttpRequest, app_dict: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The admin's app dict (AdminSite._build_app_dict) regrouped: one "app" per group, shaped
    like Django's so admin/app_list.html and the sidebar render it; empty groups left out."""
    models = {
        f"{app_label}.{entry['object_name'].lower()}": entry
        for app_label, app in app_dict.items()
        for entry in app["models"]
    }
    groups = []
    for group in GROUPS:
        entries = [_entry(request, item, models) for item in group.entries]
        groups.append(_as_app(request, group, [e for e in entries if e]))
    groups.append(_as_app(request, OTHER, sorted(models.values(), key=lambda m: m["name"])))
    return [g for g in groups if g["models"]]


def _entry(request, item: str | Page, models: dict[str, dict]) -> dict[str, Any] | None:
    if isinstance(item, str):
        return models.pop(item, None)  # popped: what is left over goes to "Other"
    if not request.user.has_perm(item.permission):
        return None
    try:
        url = reverse(item.url_name)
    except NoReverseMatch:
        return None
    object_name = item.url_name.rsplit(":", 1)[-1].replace("-", "")
    return {"name": item.name, "object_name": object_name, "admin_url": url, "page": True}


def _as_app(request, group: Group, entries: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": group.title,
        "app_label": group.key,
        "app_url": "",
        "has_module_perms": True,
        "models": entries,
        "current": any(
            e.get("admin_url") and request.path.startswith(e["admin_url"]) for e in entries
        ),
    }
