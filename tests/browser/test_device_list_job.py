"""The device list's "Run a job on these devices" in headless Chromium: an operator filters the
list with the sidebar, follows the entry, sees the filter's devices as the job's targets, picks a
firmware version, creates the job and lands on its page with the right target count. The list
with the entry and the form are checked at 390 and 1366 px for horizontal overflow; screenshots
go to var/screenshots."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from firmware.models import Job
from monitoring.models import Presence
from tests.browser.conftest import SCREENSHOTS, log_in, set_viewport, submit
from tests.conftest import make_device, make_user
from tests.firmware.helpers import make_version

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
RUN_JOB = "//a[normalize-space()='Run a job on these devices']"


def page_overflows(browser) -> bool:
    return browser.execute_script("return document.documentElement.scrollWidth > window.innerWidth")


def follow_sidebar(browser, text: str) -> None:
    link = browser.find_element(By.XPATH, f"//nav[@id='changelist-filter']//a[text()='{text}']")
    browser.execute_script("arguments[0].scrollIntoView()", link)
    submit(browser, link)


def test_an_operator_runs_a_firmware_job_on_the_filtered_list(browser, live_server):
    make_user("otto", "Fleet operator", is_staff=True)
    for n in range(3):
        device = make_device(
            f"sensor-{n}", device_name=f"Roof sensor {n}", firmware_version="1.9.3"
        )
        Presence.objects.create(device=device, online=True)
    make_device("sensor-new", firmware_version="2.0.0")
    make_device("camera-1", device_type="camera", firmware_version="1.9.3")
    version = make_version("2.0.0", security_version=1)
    log_in(browser, live_server, "otto", "pw-otto")

    browser.get(f"{live_server.url}/admin/devices/device/")
    follow_sidebar(browser, "sensor")
    follow_sidebar(browser, "1.9.3")
    assert "device_type=sensor" in browser.current_url
    assert "firmware_version=1.9.3" in browser.current_url
    for width, height in [(390, 844), (1366, 768)]:
        set_viewport(browser, width, height)
        entry = browser.find_element(By.XPATH, RUN_JOB)
        assert entry.is_displayed()
        assert not page_overflows(browser)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", entry)
        browser.save_screenshot(str(SCREENSHOTS / f"device-list-run-job-{width}.png"))

    submit(browser, browser.find_element(By.XPATH, RUN_JOB))
    targets = browser.find_element(By.ID, "filter-targets")
    assert targets.text == ("The 3 devices matching device type: sensor, firmware version: 1.9.3.")
    assert not browser.find_elements(By.CSS_SELECTOR, ".field-groups")  # no pickers
    Select(browser.find_element(By.NAME, "firmware")).select_by_value(str(version.pk))
    for width, height in [(390, 844), (1366, 768)]:
        set_viewport(browser, width, height)
        assert not page_overflows(browser)
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", targets)
        browser.save_screenshot(str(SCREENSHOTS / f"job-on-filter-form-{width}.png"))
    submit(browser, browser.find_element(By.NAME, "_save"))

    job = Job.objects.get()
    assert browser.current_url.endswith(f"/admin/firmware/job/{job.pk}/change/")
    assert "was added successfully" in browser.find_element(By.CLASS_NAME, "messagelist").text
    assert (job.firmware, job.target_count) == (version, 3)
    assert browser.find_element(By.CSS_SELECTOR, ".field-targets .readonly").text.startswith(
        "The 3 devices in service matching device type: sensor, firmware version: 1.9.3"
    )
    assert "unreleased: 3" in browser.find_element(By.CSS_SELECTOR, ".field-counts").text
    browser.save_screenshot(str(SCREENSHOTS / "job-on-filter-page-1366.png"))
