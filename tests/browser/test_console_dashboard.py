"""The console's home in headless Chromium, served by Daphne (HTTP and the summary's
WebSocket): admin, operator and viewer log in and land on the fleet dashboard, follow a count
to the device list showing that many devices, the dashboard changes without a reload when
beat's refresh counts a new device, and the dashboard and its navigation fit 1366 px and 390 px
(the sidebar becomes a menu). Screenshots: docs/screenshots/console-*.png are copies."""

from types import SimpleNamespace

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from devices.choices import DeviceStatus
from monitoring.summary import services
from tests.browser.conftest import SCREENSHOTS, log_in, set_viewport, submit, submit_live, text_of
from tests.conftest import make_device, make_user
from tests.monitoring.summary.fleet import hand_counted_fleet

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ROLES = {"ada": "Fleet admin", "otto": "Fleet operator", "vera": "Fleet viewer"}


def fits(browser) -> bool:
    """No horizontal scrolling: the page is no wider than the window."""
    return browser.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"
    )


def open_dashboard(browser, server: str, username: str, width: int, height: int) -> None:
    """The hand-counted fleet, counted by beat, seen by `username` right after logging in."""
    make_user(username, ROLES[username], is_staff=True)
    hand_counted_fleet()
    services.refresh()
    set_viewport(browser, width, height)
    log_in(browser, SimpleNamespace(url=server), username, f"pw-{username}")
    assert browser.current_url == f"{server}/admin/"  # login lands on the dashboard
    WebDriverWait(browser, 15).until(
        lambda b: b.find_element(By.ID, "fleet-live-state").get_attribute("data-state") == "live"
    )
    # The catch-up fetch on connect has swapped the parts: nothing swaps them until a change.
    WebDriverWait(browser, 15).until(
        lambda b: b.find_element(By.ID, "fleet-live").get_attribute("data-refreshed")
    )


def figure(browser, group: str, key: str) -> str:
    return text_of(browser, f"#fleet-{group} .fleet-{group}-{key} b")


@pytest.mark.parametrize("username", list(ROLES))
def test_each_role_lands_on_the_dashboard_and_a_count_leads_to_that_many_devices(
    browser, asgi_live_server, username
):
    open_dashboard(browser, asgi_live_server, username, 1366, 768)

    sidebar = browser.find_element(By.ID, "nav-sidebar")
    assert sidebar.is_displayed()
    groups = [c.text for c in sidebar.find_elements(By.CSS_SELECTOR, ".module caption")]
    assert groups == [
        "FLEET",
        "IDENTITY",
        "STATE & CONFIGURATION",
        "FIRMWARE",
        "HEALTH",
        "GATEWAYS",
    ]
    badge = browser.find_element(By.CSS_SELECTOR, "#fleet-status .fleet-status-active .badge")
    assert badge.text == "Active" and "badge-ok" in badge.get_attribute("class")
    assert fits(browser)
    if username == "vera":
        assert not browser.find_elements(
            By.CSS_SELECTOR, "#content-main a.addlink, #content-main form"
        )
    browser.save_screenshot(str(SCREENSHOTS / f"console-dashboard-{username}-1366.png"))

    assert figure(browser, "status", "active") == "5"
    submit_live(browser, "#fleet-status .fleet-status-active")
    assert browser.current_url.endswith("/admin/devices/device/?status__exact=active")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")) == 5
    assert "5 devices" in browser.find_element(By.CSS_SELECTOR, ".paginator").text
    current = browser.find_element(By.CSS_SELECTOR, "#nav-sidebar .current-model th")
    assert current.text == "Devices"
    if username == "ada":
        browser.save_screenshot(str(SCREENSHOTS / "console-nav-1366.png"))


def test_the_dashboard_changes_live_when_a_figure_changes(browser, asgi_live_server):
    open_dashboard(browser, asgi_live_server, "ada", 1366, 768)
    page = browser.find_element(By.TAG_NAME, "html")
    assert figure(browser, "status", "active") == "5"

    make_device("new-1", status=DeviceStatus.ACTIVE)
    services.refresh()  # beat's next refresh counts it and the page hears of it

    WebDriverWait(browser, 15).until(lambda b: figure(b, "status", "active") == "6")
    assert figure(browser, "presence", "never_connected") == "4"
    assert browser.find_element(By.TAG_NAME, "html") == page  # the same document: no reload
    browser.save_screenshot(str(SCREENSHOTS / "console-dashboard-live-1366.png"))
    rollouts = browser.find_element(By.ID, "fleet-rollouts")
    browser.execute_script("arguments[0].scrollIntoView()", rollouts)
    browser.save_screenshot(str(SCREENSHOTS / "console-dashboard-lower-1366.png"))


def test_the_dashboard_and_its_navigation_work_at_phone_width(browser, asgi_live_server):
    open_dashboard(browser, asgi_live_server, "vera", 390, 844)

    assert not browser.find_element(By.ID, "nav-sidebar").is_displayed()
    assert fits(browser)
    browser.save_screenshot(str(SCREENSHOTS / "console-dashboard-390.png"))
    firmware = browser.find_element(By.ID, "fleet-firmware")
    browser.execute_script("arguments[0].scrollIntoView()", firmware)
    browser.save_screenshot(str(SCREENSHOTS / "console-dashboard-lower-390.png"))

    browser.execute_script("window.scrollTo(0, 0)")
    browser.find_element(By.CSS_SELECTOR, "#console-menu summary").click()
    fleet = browser.find_element(By.CSS_SELECTOR, "#console-menu .app-fleet")
    assert fleet.is_displayed() and fits(browser)
    browser.save_screenshot(str(SCREENSHOTS / "console-nav-390.png"))
    submit(browser, fleet.find_element(By.LINK_TEXT, "Devices"))
    assert browser.current_url.endswith("/admin/devices/device/")

    browser.get(f"{asgi_live_server}/fleet/")
    assert browser.find_element(By.ID, "fleet-live") and fits(browser)
