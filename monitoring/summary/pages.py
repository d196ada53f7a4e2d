"""The fleet summary: the console's home (/admin/, registered on fleetportal's HOME_PAGE) and
its own page (/fleet/), both in the admin look; every figure links to the admin list it counts.

The parts are one fragment (/fleet/parts/) that both fetch again when the socket says the
summary changed (monitoring.summary.consumers; script fleetportal/live_parts.js)."""

from typing import Any

from django.contrib import admin
from django.contrib.auth.decorators import permission_required
from django.template.response import TemplateResponse
from django.urls import reverse

from devices.choices import DeviceStatus
from monitoring.summary import figures, services
from monitoring.summary.api import VIEW

DEVICES = "admin:devices_device_changelist"
ALERTS = "admin:monitoring_alert_changelist"
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
    context = {**admin.site.each_context(request), "title": "Fleet summary", **figures_context()}
    return TemplateResponse(request, template, context)


def home_section(request, _site) -> dict[str, Any]:
    """The console's home page section (fleetportal.admin_site.HOME_PAGE; VIEW is checked
    there): the same parts as /fleet/, live on the same socket."""
    return figures_context()


def figures_context() -> dict[str, Any]:
    summary = services.current()
    for row in summary["latest_events"] + summary["latest_alerts"]:
        row["link"] = figures.admin_link_to("admin:devices_device_change", row["device_pk"])
    return {
        "summary": summary,
        "tiles": tiles(summary),
        "firmware": firmware_rows(summary["firmware"]),
        "rollouts": rollout_rows(summary.get("active_rollouts", [])),
        "online_chart": sparkline(summary["online_ratio_24h"]["samples"]),
        "online_link": figures.admin_link(DEVICES, online="yes"),
        "parts_url": reverse("fleet-page-parts"),
    }


def tile(key: str, label: str, count: int, url: str) -> dict[str, Any]:
    return {"key": key, "label": label, "count": count, "url": url}


TITLES = {
    "presence": "Presence (devices in service)",
    "status": "Lifecycle status",
    "alerts": "Open alerts",
    "work": "Needs attention",
}


# Groups whose keys are statuses (fleetportal.console's tones): their labels are badges.
BADGED = ("presence", "status", "alerts")


def tiles(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups of figures, each with its title and its (label, count, link) rows."""
    return [
        {"name": name, "title": TITLES[name], "rows": rows, "badges": name in BADGED}
        for name, rows in _rows(summary).items()
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
            tile(k, k.capitalize(), alerts[k], link(ALERTS, severity__exact=k, open="yes"))
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


def rollout_rows(active: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Active rollouts with the share of their devices final (updated, failed or canceled)."""
    return [
        {
            **r,
            "percent": round(100 * r["finished"] / r["devices"]) if r["devices"] else 0,
            "link": figures.admin_link_to("admin:firmware_rollout_page", r["rollout_id"]),
        }
        for r in active
    ]


SPARK_WIDTH, SPARK_HEIGHT = 240, 48


def sparkline(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The 24 h online ratio as an SVG polyline's points (drawn server-side: correct without
    JavaScript and swapped with the parts like every other figure); None without samples."""
    if not samples:
        return None
    step = SPARK_WIDTH / max(len(samples) - 1, 1)
    ratios = [max(0.0, min(1.0, float(s["ratio"]))) for s in samples]
    if len(ratios) == 1:
        ratios = ratios * 2  # one sample: a flat line across
    points = " ".join(
        f"{i * step:.1f},{SPARK_HEIGHT - ratio * SPARK_HEIGHT:.1f}"
        for i, ratio in enumerate(ratios)
    )
    return {"points": points, "width": SPARK_WIDTH, "height": SPARK_HEIGHT, "last": ratios[-1]}
