"""An operator moves a device through its lifecycle with the device page's buttons (only the
allowed next states are offered), in headless Chromium."""

import pytest

from devices.choices import DeviceStatus
from devices.models import Device
from tests.browser.conftest import SCREENSHOTS, log_in, set_viewport, submit
from tests.conftest import make_device, make_user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def transition_form_box(browser) -> dict:
    """Where the form's heading, fields and button are drawn: the union of their boxes."""
    return browser.execute_script(
        "const parts = document.querySelectorAll("
        "  '#transition-form h2, #transition-form input[type=text], #transition-form button');"
        "const boxes = [...parts].map(p => p.getBoundingClientRect());"
        "const left = Math.min(...boxes.map(b => b.left));"
        "const right = Math.max(...boxes.map(b => b.right));"
        "return {parts: boxes.length, left: left, right: right, width: right - left,"
        " viewport: document.documentElement.clientWidth};"
    )


def buttons(browser) -> list[str]:
    form = browser.find_element("id", "transition-form")
    return [b.get_attribute("value") for b in form.find_elements("css selector", "button")]


def move(browser, target: str, reason: str) -> None:
    form = browser.find_element("id", "transition-form")
    browser.execute_script("arguments[0].scrollIntoView()", form)
    form.find_element("name", "reason").send_keys(reason)
    submit(browser, form.find_element("css selector", f"button[value={target}]"))


@pytest.mark.parametrize("width,height", [(1366, 768), (1920, 1080), (390, 844)])
def test_the_change_status_form_is_on_screen(browser, live_server, width, height):
    make_user("otto", "Fleet operator", is_staff=True)
    device = make_device("page-1", status=DeviceStatus.ACTIVE)
    set_viewport(browser, width, height)
    log_in(browser, live_server, "otto", "pw-otto")

    browser.get(f"{live_server.url}/admin/devices/device/{device.pk}/change/")

    box = transition_form_box(browser)
    assert box["parts"] == 4 and box["width"] > 200, box  # heading, reason, two buttons
    assert box["left"] >= 0 and box["right"] <= box["viewport"] + 1, box
    browser.execute_script(
        "arguments[0].scrollIntoView()", browser.find_element("id", "transition-form")
    )
    browser.save_screenshot(str(SCREENSHOTS / f"device-page-{width}.png"))


def test_an_operator_moves_a_device_through_its_lifecycle_from_its_page(browser, live_server):
    make_user("otto", "Fleet operator", is_staff=True)
    device = make_device("life-1", status=DeviceStatus.PROVISIONING)
    log_in(browser, live_server, "otto", "pw-otto")
    page = f"{live_server.url}/admin/devices/device/{device.pk}/change/"

    allowed = {
        DeviceStatus.PROVISIONING: ["active", "decommissioned"],
        DeviceStatus.ACTIVE: ["maintenance", "decommissioned"],
        DeviceStatus.MAINTENANCE: ["active", "decommissioned"],
    }
    for target in (DeviceStatus.ACTIVE, DeviceStatus.MAINTENANCE, DeviceStatus.ACTIVE):
        browser.get(page)
        assert buttons(browser) == allowed[Device.objects.get(pk=device.pk).status]
        move(browser, target, f"to {target}")
        messages = browser.find_element("css selector", "ul.messagelist").text
        assert f"is now {target}" in messages, messages
        assert Device.objects.get(pk=device.pk).status == target

    browser.get(page)
    move(browser, DeviceStatus.DECOMMISSIONED, "end of life")
    assert Device.objects.get(pk=device.pk).status == DeviceStatus.DECOMMISSIONED
    assert "transition-form" not in browser.page_source  # nothing to move to any more
    events = device.events.filter(event_type="status_changed").order_by("created_at")
    assert [e.event_data.get("to") for e in events] == [
        "active",
        "maintenance",
        "active",
        "decommissioned",
    ]
    assert {e.actor for e in events} == {"otto"}
