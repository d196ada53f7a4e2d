"""The fleet summary page (/fleet/, admin look): every figure links to the admin list it counts.

The parts are one fragment (/fleet/parts/) that the page fetches again when the socket says
the summary changed (monitoring.summary.consumers; script monitoring/fleet_live.js)."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.template.response import TemplateResponse
from django.urls import reverse

from devices.choices import DeviceStatus
from monitoring.summary import figures, services
from monitoring.summary.api import VIEW

DEVICES = "admin:devices_device_changelist"
# The device list's filters for each presence figure (devices.device_list; `connected` is
# monitoring's own, monitoring/presence/device_list.py).
PRESENCE_FILTER = {
    "online": {"online": "yes"},
    "offline": {"online": "no", "connected": "ever"},
    "never_connected": {"connected": "never"},
}
PRESENCE_LABEL = {"online": "Online", "offline": "Offline", "never_connected": "Never connected"}


def fleet_page(request):
    return _render(request, "monitoring/fleet.html")


def fleet_parts(request):
    return _render(request, "monitoring/fleet_parts.html")


@permission_required(VIEW, raise_exception=True)
def _render(request, template: str):
    summary = services.current()
    context = {
        **admin.site.each_context(request),
        "title": "Fleet summary",
        "summary": summary,
        "tiles": tiles(summary),
        "firmware": firmware_rows(summary["firmware"]),
        "parts_url": reverse("fleet-page-parts"),
    }
    return TemplateResponse(request, template, context)


def tile(key: str, label: str, count: int, url: str) -> dict[str, Any]:
    return {"key": key, "label": label, "count": count, "url": url}


TITLES = {
    "presence": "Presence (devices in service)",
    "status": "Lifecycle status",
    "alerts": "Open alerts",
    "work": "Needs attention",
}


def tiles(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups of figures, each with its title and its (label, count, link) rows."""
    return [
        {"name": name, "title": TITLES[name], "rows": rows} for name, rows in _rows(summary).items()
    ]


def _rows(summary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each group of figures as (label, count, link) rows, in the order the page shows them."""
    link = figures.admin_link
    by_status = summary["devices"]["by_status"]
    alerts = summary["alerts"]["by_severity"]
    return {
        "presence": [
            tile(k, PRESENCE_LABEL[k], summary["presence"][k], link(DEVICES, **params))
            for k, params in PRESENCE_FILTER.items()
        ],
        "status": [
            tile(s.value, s.label, by_status.get(s.value, 0), link(DEVICES, status__exact=s))
            for s in DeviceStatus
        ],
        "alerts": [
            tile(k, k.capitalize(), alerts[k], link("admin:monitoring_alert_changelist"))
            for k in figures.SEVERITIES
        ],
        "work": [
            tile(
                f"expiring_{days}_days",
                f"Certificates expiring in {days} days",
                summary["certificates"][f"expiring_{days}_days"],
                link("admin:devices_devicecredential_changelist", expires_within=str(days)),
            )
            for days in figures.CERTIFICATE_WINDOWS
        ]
        + [
            tile(
                "drifting_devices",
                "Devices with configuration drift",
                summary["configuration"]["drifting_devices"],
                link("shadows:config-drift"),
            ),
            tile(
                "jobs_in_progress",
                "Jobs in progress",
                summary["jobs"]["IN_PROGRESS"],
                link("admin:firmware_job_changelist", status__exact="IN_PROGRESS"),
            ),
            tile(
                "rollouts_running",
                "Rollouts running",
                summary["rollouts"]["running"],
                link("admin:firmware_rollout_changelist", status__exact="running"),
            ),
        ],
    }


def firmware_rows(per_type: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per device type, its versions with their share of the type's devices and a link."""
    return [
        {
            **of_type,
            "link": figures.admin_link(DEVICES, device_type=of_type["device_type"]),
            "versions": [
                {
                    **v,
                    "percent": round(100 * v["devices"] / of_type["devices"]),
                    "link": figures.admin_link(
                        DEVICES, device_type=of_type["device_type"], firmware_version=v["version"]
                    ),
                }
                for v in of_type["versions"]
            ],
        }
        for of_type in per_type
    ]
