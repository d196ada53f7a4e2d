"""Swagger UI and Redoc load from the portal alone, with no Content-Security-Policy complaint."""

import time
from types import SimpleNamespace

import pytest

from tests.browser.conftest import SCREENSHOTS, log_in
from tests.conftest import make_user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.mark.parametrize(("page", "ready"), [("/api/docs/", ".opblock"), ("/api/redoc/", "h2")])
def test_the_api_docs_load_only_local_assets_and_break_no_policy(
    browser, asgi_live_server, page, ready
):
    # Daphne, as in production: log_in lands on the dashboard, whose WebSocket a WSGI
    # live server would refuse (a console error the test would count).
    live_server = SimpleNamespace(url=asgi_live_server)
    make_user("vera", "Fleet viewer", is_staff=True)
    log_in(browser, live_server, "vera", "pw-vera")

    browser.get(live_server.url + page)
    browser.find_element("css selector", ready)  # rendered (implicit wait)
    time.sleep(0.5)

    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    foreign = [url for url in resources if not url.startswith(("data:", live_server.url))]
    assert resources and foreign == []
    problems = [
        entry["message"]
        for entry in browser.get_log("browser")
        if entry["level"] == "SEVERE" and "favicon" not in entry["message"]
    ]
    assert problems == []
    browser.save_screenshot(str(SCREENSHOTS / f"api{page.replace('/', '-').rstrip('-')}.png"))
