"""The device page's AWS IoT Core sections in headless Chromium: an operator sees where a device's
thing stands (in sync, or failing with AWS's error and the next attempt) on the Overview tab and
its shadow changes still on their way to AWS on the Shadow tab; a device on the portal's broker
has no AWS section. Both fit 1366 px and 390 px without sideways scrolling. The rows are set up
in the database: no AWS is needed. Screenshots: var/screenshots/aws-device-*.png."""

from datetime import timedelta

import pytest
from django.utils import timezone
from selenium.webdriver.common.by import By

from aws_gateway.choices import SyncState
from aws_gateway.models import ShadowPush, ThingSync
from tests.aws.gateway_field import put_on_aws
from tests.browser.conftest import log_in, set_viewport
from tests.browser.test_device_console import assert_fits, screenshot, show_tab
from tests.conftest import make_device, make_user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

ACCOUNT = "arn:aws:iot:eu-west-1:123456789012"
# AWS's own words, as long as they come: the page must wrap them, not widen.
ERROR = (
    "InvalidRequestException: Thing type cold-chain-temperature-sensor-v2 is deprecated and "
    f"cannot be used to update the thing {ACCOUNT}:thing/aws-failing-boiler-room-sensor-0042"
)
SIZES = [(1366, 768), (390, 844)]


def on_aws(device_id: str):
    # Moved to AWS without the registry's hooks: no sync is queued, the rows below are the state.
    device = make_device(device_id, status="active")
    put_on_aws(device)
    return device


def synced_device():
    device = on_aws("aws-synced-sensor-0007")
    ThingSync.objects.create(
        device=device,
        state=SyncState.SYNCED,
        thing_name=device.device_id,
        thing_arn=f"{ACCOUNT}:thing/{device.device_id}",
        thing_version=3,
        synced_generation=1,
        synced_at=timezone.now() - timedelta(minutes=2),
    )
    return device


def failing_device():
    device = on_aws("aws-failing-boiler-room-sensor-0042")
    now = timezone.now()
    ThingSync.objects.create(
        device=device,
        state=SyncState.FAILED,
        thing_name=device.device_id,
        attempts=3,
        next_attempt_at=now + timedelta(minutes=4, seconds=40),
        last_error=ERROR,
        last_error_at=now,
    )
    ShadowPush.objects.create(
        device=device,
        thing_name=device.device_id,
        shadow_name="config",
        state={"desired": {"report_interval": 30}},
        attempts=2,
        next_attempt_at=now + timedelta(minutes=1),
        last_error=f"ResourceNotFoundException: No thing named {device.device_id}",
    )
    return device


def open_page(browser, live_server, device) -> None:
    browser.get(f"{live_server.url}/admin/devices/device/{device.pk}/change/")


def text_of_id(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).text


@pytest.mark.parametrize("width,height", SIZES)
def test_an_operator_sees_the_things_sync_state_and_its_error(browser, live_server, width, height):
    make_user("otto", "Fleet operator", is_staff=True)
    synced, failing = synced_device(), failing_device()
    set_viewport(browser, width, height)
    log_in(browser, live_server, "otto", "pw-otto")

    open_page(browser, live_server, synced)
    section = text_of_id(browser, "device-aws")
    assert "In sync" in section and f"{ACCOUNT}:thing/{synced.device_id}" in section, section
    assert "version 3" in section and "2 min ago" in section
    assert "error" not in section
    assert_fits(browser, f"synced, {width} px")
    screenshot(browser, f"aws-device-synced-{width}", width)

    open_page(browser, live_server, failing)
    section = text_of_id(browser, "device-aws")
    assert "Failed: retrying" in section and "not created yet" in section, section
    assert ERROR in " ".join(section.split())
    assert "3 failed attempts in a row; next attempt in 4 min" in section
    assert_fits(browser, f"failed sync, {width} px")
    screenshot(browser, f"aws-device-failed-{width}", width)

    show_tab(browser, "shadow")
    waiting = text_of_id(browser, "device-aws-state")
    assert "Shadow changes not on AWS yet" in waiting, waiting
    assert "config" in waiting and "tried 2\N{MULTIPLICATION SIGN}" in waiting
    assert f"No thing named {failing.device_id}" in " ".join(waiting.split())
    assert_fits(browser, f"shadow changes waiting, {width} px")
    screenshot(browser, f"aws-device-shadow-{width}", width)


def test_a_device_on_the_broker_has_no_aws_section(browser, live_server):
    make_user("otto", "Fleet operator", is_staff=True)
    device = make_device("broker-sensor-1", status="active")
    log_in(browser, live_server, "otto", "pw-otto")

    open_page(browser, live_server, device)
    assert browser.find_element(By.ID, "device-page").is_displayed()
    assert not browser.find_elements(By.ID, "device-aws")
    show_tab(browser, "shadow")
    assert not browser.find_elements(By.ID, "device-aws-state")
    assert "AWS IoT Core" not in browser.find_element(By.TAG_NAME, "body").text
