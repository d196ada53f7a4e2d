"""The console's navigation groups (fleetportal.navigation): models by what operators look for,
pages only for whoever may open them, and a model no group names shown under "Other" — a new
model is never hidden from the navigation."""

from types import SimpleNamespace

from django.test import RequestFactory

from fleetportal import navigation


def entry(object_name: str, url: str) -> dict:
    return {"name": object_name, "object_name": object_name, "admin_url": url}


def app_dict() -> dict:
    return {
        "devices": {"models": [entry("Device", "/admin/devices/device/")]},
        "firmware": {"models": [entry("Rollout", "/admin/firmware/rollout/")]},
        "newapp": {"models": [entry("Gadget", "/admin/newapp/gadget/")]},
    }


def request_by(permissions: set[str], path: str = "/admin/"):
    request = RequestFactory().get(path)
    request.user = SimpleNamespace(has_perm=lambda permission: permission in permissions)
    return request


def test_models_land_in_their_group_and_unknown_ones_under_other():
    groups = navigation.grouped(request_by(set()), app_dict())
    assert [(g["name"], [m["name"] for m in g["models"]]) for g in groups] == [
        ("Fleet", ["Device"]),
        ("Firmware", ["Rollout"]),
        ("Other", ["Gadget"]),
    ]


def test_a_page_shows_only_to_whoever_holds_its_permission():
    request = request_by({"monitoring.view_fleetsnapshot"})
    health = [g for g in navigation.grouped(request, app_dict()) if g["app_label"] == "health"]
    assert health[0]["models"] == [
        {"name": "Fleet summary", "object_name": "fleetpage", "admin_url": "/fleet/", "page": True}
    ]


def test_the_group_of_the_page_being_viewed_is_marked_current():
    groups = navigation.grouped(request_by(set(), "/admin/firmware/rollout/7/change/"), app_dict())
    assert [g["app_label"] for g in groups if g["current"]] == ["firmware"]
