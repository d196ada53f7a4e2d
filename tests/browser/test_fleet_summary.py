"""The fleet summary page in headless Chromium, served by Daphne (HTTP and its WebSocket): a
viewer sees the hand-counted figures, each a link to the admin list it counts, and a figure
changes without a reload when beat's refresh counts a change. Screenshots at 1366 px and
390 px wide (docs/screenshots/fleet-summary-*.png are copies)."""

from types import SimpleNamespace

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from monitoring.models import Presence
from monitoring.summary import services
from tests.browser.conftest import SCREENSHOTS, log_in, set_viewport, submit_live, text_of
from tests.conftest import make_user
from tests.monitoring.summary.fleet import hand_counted_fleet

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def figure(browser, group: str, key: str) -> str:
    return text_of(browser, f"#fleet-{group} .fleet-{group}-{key} b")


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)])
def test_a_viewer_sees_the_figures_and_one_changes_live(browser, asgi_live_server, width, height):
    make_user("vera", "Fleet viewer", is_staff=True)
    devices = hand_counted_fleet()
    services.refresh()
    set_viewport(browser, width, height)
    log_in(browser, SimpleNamespace(url=asgi_live_server), "vera", "pw-vera")
    submit_live(browser, "#fleet-summary-link a")  # from the index, itself a live page
    WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.ID, "fleet-live-state").get_attribute("data-state") == "live"
    )
    # The catch-up fetch on connect has swapped the parts: nothing swaps them until a change.
    WebDriverWait(browser, 30).until(
        lambda b: b.find_element(By.ID, "fleet-live").get_attribute("data-refreshed")
    )
    assert figure(browser, "presence", "online") == "2"
    assert figure(browser, "presence", "never_connected") == "3"
    assert figure(browser, "status", "active") == "5"
    assert figure(browser, "alerts", "critical") == "2"
    assert figure(browser, "work", "drifting_devices") == "2"
    assert figure(browser, "work", "expiring_7_days") == "1"
    online = browser.find_element(By.CSS_SELECTOR, "#fleet-presence .fleet-presence-online")
    assert online.get_attribute("href").endswith("/admin/devices/device/?online=yes")
    firmware = browser.find_element(By.ID, "fleet-firmware").text
    assert "sensor · 5 devices" in firmware and "1.0.0" in firmware
    page = browser.find_element(By.TAG_NAME, "html")
    browser.save_screenshot(str(SCREENSHOTS / f"fleet-summary-{width}.png"))

    # a3 connects; beat's next refresh counts it and the page hears of it.
    Presence.objects.create(device=devices["a3"], online=True)
    services.refresh()
    WebDriverWait(browser, 15).until(lambda b: figure(b, "presence", "online") == "3")
    assert figure(browser, "presence", "never_connected") == "2"
    assert browser.find_element(By.TAG_NAME, "html") == page  # the same document: no reload
    browser.save_screenshot(str(SCREENSHOTS / f"fleet-summary-live-{width}.png"))
    firmware = browser.find_element(By.ID, "fleet-firmware")
    browser.execute_script("arguments[0].scrollIntoView()", firmware)
    browser.save_screenshot(str(SCREENSHOTS / f"fleet-summary-lower-{width}.png"))


def test_a_user_without_the_permission_gets_no_page(browser, asgi_live_server):
    make_user("nobody", is_staff=True)
    log_in(browser, SimpleNamespace(url=asgi_live_server), "nobody", "pw-nobody")
    assert not browser.find_elements(By.ID, "fleet-summary-link")
    browser.get(f"{asgi_live_server}/fleet/")
    assert "403" in browser.title or "Forbidden" in browser.page_source
