"""The device list, the group form and the live job and shadow pages in headless Chromium: an
operator follows a list filter, exports the filtered CSV, saves the filter as a dynamic group,
types a group filter and sees the preview count change, starts a bulk action and watches its
page finish without reloading, and sees a reported value arrive on the shadow page. Each page is
checked at 1366 px and 390 px wide for horizontal overflow; screenshots go to var/screenshots
(docs/screenshots/console-*.png are copies)."""

import csv
import io
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from devices.choices import DeviceStatus
from devices.models import Device, DeviceGroup
from monitoring.models import Alert, AlertRule, Presence
from shadows import services as shadows
from tests.browser.conftest import SCREENSHOTS, log_in, set_viewport, submit, text_of
from tests.conftest import make_device, make_group, make_user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

SIZES = [(1366, 768), (390, 844)]


def page_overflows(browser) -> bool:
    return browser.execute_script("return document.documentElement.scrollWidth > window.innerWidth")


def table_is_cut(browser) -> bool:
    """The results table is wider than its box (it scrolls inside it)."""
    return browser.execute_script(
        "const box = document.querySelector('#changelist-form .results');"
        "return box.scrollWidth > box.clientWidth"
    )


def a_fleet():
    """Five devices with values as wide as a real fleet's (names, groups, times, alerts)."""
    group = make_group("building-a-roof")
    rule = AlertRule.objects.create(name="battery low", severity="critical")
    for n in range(3):
        device = make_device(
            f"sensor-{n}",
            device_name=f"Roof sensor {n}",
            status=DeviceStatus.ACTIVE,
            group=group,
            firmware_version="2.1.0",
            metadata={"site": "berlin-mitte"},
        )
        Presence.objects.create(device=device, online=n != 2)
        seen = timezone.now() - timedelta(minutes=12 * (n + 1))
        Device.objects.filter(pk=device.pk).update(last_seen=seen)
        Alert.objects.create(rule=rule, device=device, severity="critical", raised_at=seen)
    make_device("camera-1", device_type="camera", device_name="=HYPERLINK(1)")
    make_device("meter-1", device_type="meter", status=DeviceStatus.MAINTENANCE)


def open_list(browser, url: str, query: str = "") -> None:
    browser.get(f"{url}/admin/devices/device/{query}")
    browser.find_element(By.ID, "result_list")


def listed(browser) -> set[str]:
    cells = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody th a")
    return {cell.text.splitlines()[0] for cell in cells}


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_an_operator_filters_the_list_and_exports_it(browser, live_server, width, height):
    make_user("otto", "Fleet operator", is_staff=True)
    a_fleet()
    set_viewport(browser, width, height)
    log_in(browser, live_server, "otto", "pw-otto")
    open_list(browser, live_server.url)
    browser.save_screenshot(str(SCREENSHOTS / f"console-device-list-{width}.png"))
    assert listed(browser) == {"sensor-0", "sensor-1", "sensor-2", "camera-1", "meter-1"}
    assert not page_overflows(browser)
    if width == 1366:
        assert not table_is_cut(browser)  # every column fits
    else:
        assert table_is_cut(browser)  # the table scrolls inside its own box, not the page

    # Follow a filter of the sidebar (at 390 px it is below the list).
    link = browser.find_element(By.XPATH, "//nav[@id='changelist-filter']//a[text()='Active']")
    browser.execute_script("arguments[0].scrollIntoView()", link)
    submit(browser, link)
    assert "status__exact=active" in browser.current_url
    assert listed(browser) == {"sensor-0", "sensor-1", "sensor-2"}
    assert browser.find_element(By.CSS_SELECTOR, '.badge[data-status="active"]').text == "Active"
    assert not page_overflows(browser)
    browser.save_screenshot(str(SCREENSHOTS / f"console-device-list-filtered-{width}.png"))

    # The export link carries the filter; the CSV has exactly the listed rows.
    href = browser.find_element(By.ID, "device-export").get_attribute("href")
    assert "status__exact=active" in href
    text = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0], {credentials: 'same-origin'}).then(r => r.text()).then(done);",
        href,
    )
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["device_id", "device_name", "device_type", "status"]
    assert sorted(row[0] for row in rows[1:]) == ["sensor-0", "sensor-1", "sensor-2"]
    assert {row[3] for row in rows[1:]} == {"active"}


def test_search_finds_a_metadata_value_and_the_filter_is_saved_as_a_group(browser, live_server):
    make_user("otto", "Fleet operator", is_staff=True)
    a_fleet()
    log_in(browser, live_server, "otto", "pw-otto")
    open_list(browser, live_server.url)
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys("BERLIN")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#changelist-search input[type=submit]"))
    assert listed(browser) == {"sensor-0", "sensor-1", "sensor-2"}

    open_list(browser, live_server.url, "?status__exact=active&device_type=sensor")
    submit(browser, browser.find_element(By.ID, "device-save-group"))
    assert '"value": "sensor"' in browser.find_element(By.ID, "save-group-document").text
    browser.find_element(By.NAME, "name").send_keys("active sensors")
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#save-group-form input[type=submit]"))
    messages = browser.find_element(By.CLASS_NAME, "messagelist").text
    assert "Dynamic group active sensors saved." in messages
    assert "3 device(s)" in browser.find_element(By.CLASS_NAME, "group-member-count").text
    assert DeviceGroup.objects.get(name="active sensors").is_dynamic

    # A search cannot be a group's filter: said so, with the way back.
    open_list(browser, live_server.url, "?q=berlin")
    submit(browser, browser.find_element(By.ID, "device-save-group"))
    assert "A search cannot be saved" in browser.find_element(By.ID, "save-group-problems").text


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_the_group_preview_follows_the_typing(browser, live_server, width, height):
    make_user("ada", "Fleet admin", is_staff=True)
    a_fleet()
    set_viewport(browser, width, height)
    log_in(browser, live_server, "ada", "pw-ada")
    browser.get(f"{live_server.url}/admin/devices/devicegroup/add/")
    field = browser.find_element(By.ID, "id_filters")
    state = "#group-preview-state"
    assert "Type a filter" in text_of(browser, state)  # the new group's "{}": nothing to preview
    field.clear()
    field.send_keys('{"field": "device_type", "op": "eq", "value": "sensor"}')
    WebDriverWait(browser, 10).until(lambda b: "Matches 3 devices" in text_of(b, state))
    assert len(browser.find_elements(By.CSS_SELECTOR, "#group-preview-sample tbody tr")) == 3
    assert not page_overflows(browser)
    browser.execute_script("arguments[0].scrollIntoView()", field)  # the filter and its preview
    browser.save_screenshot(str(SCREENSHOTS / f"console-group-preview-{width}.png"))

    field.clear()
    field.send_keys('{"field": "device_type", "op": "eq", "value": "camera"}')
    WebDriverWait(browser, 10).until(lambda b: "Matches 1 device " in text_of(b, state) + " ")
    field.send_keys(" oops")
    WebDriverWait(browser, 10).until(
        lambda b: "Enter a valid JSON" in text_of(b, "#group-preview-errors")
    )
    help_box = browser.find_element(By.ID, "group-filter-help")
    help_box.find_element(By.TAG_NAME, "summary").click()
    assert "Sensors in Berlin" in help_box.text
    assert not page_overflows(browser)
    assert [g.name for g in DeviceGroup.objects.all()] == ["building-a-roof"]  # nothing saved


def live_state(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).get_attribute("data-state")


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_a_bulk_action_page_finishes_live(browser, asgi_live_server, celery_worker, width, height):
    make_user("otto", "Fleet operator", is_staff=True)
    a_fleet()
    set_viewport(browser, width, height)
    log_in(browser, SimpleNamespace(url=asgi_live_server), "otto", "pw-otto")
    open_list(browser, asgi_live_server, "?device_type=sensor")
    choice = browser.find_element(By.ID, "id_choice")
    choice.find_element(By.XPATH, "option[text()='Move to maintenance']").click()
    submit(browser, browser.find_element(By.CSS_SELECTOR, "#device-bulk-form input[type=submit]"))
    assert "Bulk action started on 3 device(s)." in browser.page_source
    WebDriverWait(browser, 15).until(lambda b: live_state(b, "job-live-state") == "live")
    page = browser.find_element(By.TAG_NAME, "html")
    WebDriverWait(browser, 30).until(lambda b: "3 / 3 devices, 3 done" in text_of(b, ".job-counts"))
    assert text_of(browser, ".field-state .badge") == "Finished"
    assert browser.find_element(By.TAG_NAME, "html") == page  # no reload
    assert not page_overflows(browser)
    browser.save_screenshot(str(SCREENSHOTS / f"console-bulk-action-{width}.png"))


def test_the_shadow_page_shows_a_reported_value_without_reloading(browser, asgi_live_server):
    make_user("vera", "Fleet viewer", is_staff=True)
    device = make_device("lamp-1")
    shadow = shadows.set_desired(device, "", {"on": True}, actor="x").shadow
    log_in(browser, SimpleNamespace(url=asgi_live_server), "vera", "pw-vera")
    browser.get(f"{asgi_live_server}/admin/shadows/shadow/{shadow.pk}/change/")
    WebDriverWait(browser, 15).until(lambda b: live_state(b, "shadow-live-state") == "live")
    page = browser.find_element(By.TAG_NAME, "html")
    shadows.update(device, "", {"state": {"reported": {"on": True, "lux": 412}}}, actor="device")
    WebDriverWait(browser, 15).until(lambda b: '"lux": 412' in text_of(b, "#shadow-reported"))
    assert text_of(browser, "#shadow-version") == "2"
    assert browser.find_element(By.TAG_NAME, "html") == page
    for width, height in SIZES:
        set_viewport(browser, width, height)
        assert not page_overflows(browser)
        browser.save_screenshot(str(SCREENSHOTS / f"console-shadow-live-{width}.png"))
