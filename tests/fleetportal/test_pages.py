"""Apps add sections and links to the device and group pages without devices importing them."""

import copy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from devices.pages import DEVICE_PAGE, GROUP_PAGE
from fleetportal.pages import Link, PageExtensions, Section
from tests.conftest import make_device, make_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def page(monkeypatch, settings):
    """The device page's extensions, with whatever a test adds removed afterwards, and this
    folder's templates findable."""
    templates = copy.deepcopy(settings.TEMPLATES)
    templates[0]["DIRS"] = [*templates[0]["DIRS"], Path(__file__).parent / "templates"]
    settings.TEMPLATES = templates
    monkeypatch.setattr(DEVICE_PAGE, "_sections", dict(DEVICE_PAGE._sections))
    monkeypatch.setattr(DEVICE_PAGE, "_links", dict(DEVICE_PAGE._links))
    return DEVICE_PAGE


def browse(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_registered_section_and_link_appear_on_the_device_page(page, operator, tmp_path):
    device = make_device("sect-1", firmware_version="1.2.3")
    page.add_section(
        Section(
            "firmware-test",
            "test_section.html",
            lambda request, d: {"headline": f"firmware of {d.device_id}: {d.firmware_version}"},
        )
    )
    page.add_link(Link("manual", "Manual", lambda d: f"/manual/{d.device_id}/"))

    html = browse(operator).get(f"/admin/devices/device/{device.pk}/change/").content.decode()

    assert "firmware of sect-1: 1.2.3" in html
    assert 'href="/manual/sect-1/"' in html


def test_a_section_is_hidden_without_its_permission_or_when_it_has_nothing(page, viewer):
    device = make_device("sect-2")
    page.add_section(
        Section(
            "secret",
            "test_section.html",
            lambda request, d: {"headline": "secret things"},
            permission="auth.change_user",
        )
    )
    page.add_section(Section("empty", "test_section.html", lambda request, d: None))
    page.add_link(Link("admin-only", "Admin only", lambda d: "/x/", permission="auth.change_user"))

    html = browse(viewer).get(f"/admin/devices/device/{device.pk}/change/").content.decode()

    assert "secret things" not in html
    assert "test-section" not in html
    assert "Admin only" not in html


def test_the_configuration_section_comes_from_shadows_through_the_registry(operator):
    group = make_group("sect-g")

    html = browse(operator).get(f"/admin/devices/devicegroup/{group.pk}/change/").content.decode()

    assert 'id="group-configuration"' in html
    assert "configuration" in GROUP_PAGE._sections


def test_a_second_extension_with_the_same_name_is_refused():
    extensions = PageExtensions("test")
    extensions.add_section(Section("one", "a.html", lambda request, obj: {}))

    with pytest.raises(ImproperlyConfigured, match="already has a 'one'"):
        extensions.add_section(Section("one", "b.html", lambda request, obj: {}))
