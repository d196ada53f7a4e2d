"""A device's admin page draws its telemetry chart (uPlot, fed by the aggregates API with the
session), in headless Chromium; the period selector draws it again."""

import math
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.utils import timezone
from selenium.webdriver.support.ui import Select, WebDriverWait

from devices.choices import DeviceStatus
from tests.browser.conftest import SCREENSHOTS, log_in, set_viewport
from tests.conftest import make_device, make_user
from tests.monitoring.telemetry_helpers import (
    clean_telemetry,  # noqa: F401 (fixture)
    insert_points,
)

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("clean_telemetry"),
]

# Pixels of the plot drawn in a colour other than the background: lines were drawn.
DRAWN_PIXELS = """
const canvas = document.querySelector('#telemetry-chart canvas');
const context = canvas.getContext('2d');
const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
let drawn = 0;
for (let i = 3; i < data.length; i += 4) if (data[i] > 0) drawn++;
return drawn;
"""


def chart_state(browser) -> dict:
    return browser.execute_script(
        "const c = window.telemetryChart;"
        "return c ? {series: c.series.slice(1).map(s => s.label),"
        " points: c.data[0].length, width: c.width,"
        " viewport: document.documentElement.clientWidth,"
        " total: document.getElementById('telemetry-chart').dataset.points} : null;"
    )


def sensor_with_a_day_of_points():
    device = make_device("chart-1", status=DeviceStatus.ACTIVE)
    now = timezone.now()
    insert_points(
        [
            (device.pk, name, now - timedelta(minutes=2 * n), offset + 5 * math.sin(n / 20))
            for n in range(720)
            for name, offset in (("temperature", 21.0), ("humidity", 45.0))
        ]
    )
    return device


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)])
def test_the_device_page_draws_its_telemetry_chart(browser, asgi_live_server, width, height):
    # Daphne, as in production: log_in lands on the live dashboard and the device page is live;
    # a WSGI live server would refuse their WebSockets (a console error the test would count).
    live_server = SimpleNamespace(url=asgi_live_server)
    make_user("vera", "Fleet viewer", is_staff=True)
    device = sensor_with_a_day_of_points()
    set_viewport(browser, width, height)
    log_in(browser, live_server, "vera", "pw-vera")

    # The chart is on the device page's Telemetry tab.
    browser.get(f"{live_server.url}/admin/devices/device/{device.pk}/change/#tab-telemetry")

    WebDriverWait(browser, 10).until(lambda b: chart_state(b) is not None)
    state = chart_state(browser)
    assert state["series"] == ["humidity", "temperature"]
    assert 250 <= state["points"] <= 289  # 24 h in 5-minute buckets
    assert int(state["total"]) == 2 * state["points"]
    assert state["width"] <= state["viewport"], state  # fits the screen
    assert browser.execute_script(DRAWN_PIXELS) > 1000
    section = browser.find_element("id", "device-telemetry")
    browser.execute_script("arguments[0].scrollIntoView()", section)
    browser.save_screenshot(str(SCREENSHOTS / f"telemetry-chart-{width}.png"))

    Select(browser.find_element("id", "telemetry-period")).select_by_value("1h")
    WebDriverWait(browser, 10).until(lambda b: chart_state(b)["points"] <= 240)
    assert 25 <= chart_state(browser)["points"] <= 31  # a point every 2 minutes
    errors = [
        e
        for e in browser.get_log("browser")
        if e["level"] == "SEVERE" and "favicon" not in e["message"]
    ]
    assert errors == []
