"""Every live page without its WebSocket: pytest-django's live server speaks HTTP only, as a proxy
that refuses WebSockets would. Each page says it is not live and fetches its parts every 15 s,
so it never silently goes stale; the dashboard shows a new count that way without a reload.
(The device page's own fallback: test_device_console.py.)"""

from types import SimpleNamespace

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from devices.choices import DeviceStatus
from devices.models import BulkProvisioningJob
from monitoring.summary import services as summary
from shadows import services as shadows
from tests.browser.conftest import log_in, text_of
from tests.conftest import make_device, make_user
from tests.firmware.rollouts.test_engine import fleet, make_rollout

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def dashboard() -> tuple[str, str]:
    summary.refresh()
    return "/admin/", "fleet-live-state"


def shadow_page() -> tuple[str, str]:
    shadow = shadows.set_desired(make_device("lamp-1"), "", {"on": True}, actor="x").shadow
    return f"/admin/shadows/shadow/{shadow.pk}/change/", "shadow-live-state"


def rollout_page() -> tuple[str, str]:
    make_rollout(fleet(4), [(4, {})], created_by="alice")
    return "/admin/firmware/rollout/r1/page/", "rollout-live-state"


def provisioning_job_page() -> tuple[str, str]:
    job = BulkProvisioningJob.objects.create(csv_text="device_id,device_type\n", created_by="x")
    return f"/admin/devices/bulkprovisioningjob/{job.pk}/change/", "job-live-state"


def polling(browser, state_id: str) -> bool:
    return browser.find_element(By.ID, state_id).get_attribute("data-state") == "polling"


@pytest.mark.parametrize("page", [dashboard, shadow_page, rollout_page, provisioning_job_page])
def test_a_live_page_without_its_socket_says_it_refreshes_itself(browser, live_server, page):
    make_user("vera", "Fleet viewer", is_staff=True)
    path, state_id = page()
    log_in(browser, live_server, "vera", "pw-vera")
    browser.get(live_server.url + path)
    WebDriverWait(browser, 10).until(lambda b: polling(b, state_id))
    assert browser.find_element(By.ID, state_id).text == "not live: refreshing every 15 s"


def test_the_dashboard_without_its_socket_still_shows_a_new_count(browser, live_server):
    make_user("otto", "Fleet operator", is_staff=True)
    make_device("old-1", status=DeviceStatus.ACTIVE)
    summary.refresh()
    log_in(browser, SimpleNamespace(url=live_server.url), "otto", "pw-otto")
    WebDriverWait(browser, 10).until(lambda b: polling(b, "fleet-live-state"))
    page = browser.find_element(By.TAG_NAME, "html")
    active = "#fleet-status .fleet-status-active b"
    assert text_of(browser, active) == "1"

    make_device("new-1", status=DeviceStatus.ACTIVE)
    summary.refresh()

    WebDriverWait(browser, 40).until(lambda b: text_of(b, active) == "2")
    assert browser.find_element(By.TAG_NAME, "html") == page  # no reload
