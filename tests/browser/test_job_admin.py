"""An operator runs a firmware version as a job from the admin, in headless Chromium: from the
version's page to the job form, a group picked by autocomplete, the devices counted, a bad rate
refused on its field with nothing created, then the job listed with its counts. A viewer never
gets the form. The pages are captured at 1366 and 390 px."""

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from firmware import engine
from firmware.models import Job
from tests.browser.conftest import SCREENSHOTS, log_in, set_viewport, submit
from tests.conftest import make_device, make_group, make_user
from tests.firmware.helpers import make_version

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
# The admin draws object tools in capitals: find the link by its text in the page.
RUN_AS_JOB = "//a[normalize-space()='Run as a job']"


def choose(browser, field: str, typed: str, shown: str) -> None:
    """Pick an option of an admin autocomplete (select2) by typing part of it."""
    row = browser.find_element(By.CSS_SELECTOR, f".field-{field}")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", row)
    row.find_element(By.CSS_SELECTOR, ".select2-selection").click()
    search = browser.find_element(By.CSS_SELECTOR, ".select2-container--open input")
    search.send_keys(typed)
    option = (By.XPATH, f"//li[contains(@class, 'select2-results__option') and text()='{shown}']")
    WebDriverWait(browser, 10).until(expected_conditions.element_to_be_clickable(option)).click()


def text_of(browser, selector: str) -> str:
    return browser.find_element(By.CSS_SELECTOR, selector).text


def shoot(browser, element, name: str) -> None:
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    browser.save_screenshot(str(SCREENSHOTS / name))


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)])
def test_an_operator_runs_a_firmware_version_as_a_job_for_a_group(
    browser, live_server, width, height
):
    make_user("otto", "Fleet operator", is_staff=True)
    group = make_group("building-a")
    for n in range(3):
        make_device(f"sensor-{n}", group=group)
    make_group("building-b")
    version = make_version("2.0.0", security_version=1)
    set_viewport(browser, width, height)
    log_in(browser, live_server, "otto", "pw-otto")

    browser.get(f"{live_server.url}/admin/firmware/firmwareversion/{version.pk}/change/")
    submit(browser, browser.find_element(By.XPATH, RUN_AS_JOB))
    firmware = browser.find_element(By.NAME, "firmware")
    assert firmware.get_attribute("value") == str(version.pk)
    # Only the chosen kind's section shows: no template or own-document boxes in the way.
    assert not browser.find_element(By.NAME, "document").is_displayed()
    assert browser.find_element(By.NAME, "job_id").get_attribute("value").startswith("sensor-2-")
    browser.save_screenshot(str(SCREENSHOTS / f"job-run-as-job-{width}.png"))

    choose(browser, "groups", "ing-a", "building-a")
    browser.find_element(By.ID, "reach-button").click()
    WebDriverWait(browser, 10).until(
        expected_conditions.text_to_be_present_in_element((By.ID, "reach-result"), "in service")
    )
    assert text_of(browser, "#reach-result") == "3 devices in service. All compatible."
    rate = browser.find_element(By.NAME, "maximum_per_minute")
    rate.send_keys("5000")
    shoot(browser, browser.find_element(By.ID, "reach-result"), f"job-create-{width}.png")

    submit(browser, browser.find_element(By.NAME, "_save"))
    error = browser.find_element(By.CSS_SELECTOR, ".field-maximum_per_minute .errorlist")
    assert error.text == "Must be an integer from 1 to 1000."
    assert error.is_displayed()
    assert not Job.objects.exists()
    # The operator's choices survive the refusal: the group is still chosen.
    assert "building-a" in text_of(browser, ".field-groups")
    shoot(browser, error, f"job-create-refused-{width}.png")

    rate = browser.find_element(By.NAME, "maximum_per_minute")
    rate.clear()
    rate.send_keys("2")
    submit(browser, browser.find_element(By.NAME, "_save"))
    job = Job.objects.get()
    assert (job.firmware_id, job.rollout_config) == (version.pk, {"maximum_per_minute": 2})
    assert job.created_by == "otto"
    assert "was added successfully" in text_of(browser, ".messagelist")

    engine.tick()  # the engine releases the first of them at the rate
    job.refresh_from_db()
    assert 0 < job.released_count < 3
    browser.refresh()
    row = browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr")
    assert job.job_id in row.text and f"{job.released_count} / 3" in row.text
    browser.save_screenshot(str(SCREENSHOTS / f"job-list-{width}.png"))
    submit(browser, row.find_element(By.LINK_TEXT, job.job_id))
    counts = text_of(browser, ".field-counts")
    assert f"queued: {job.released_count}" in counts
    assert f"unreleased: {3 - job.released_count}" in counts
    shoot(browser, browser.find_element(By.CSS_SELECTOR, ".field-counts"), f"job-page-{width}.png")


def test_a_viewer_cannot_reach_the_job_form(browser, live_server):
    make_user("vera", "Fleet viewer", is_staff=True)
    version = make_version("2.0.0")
    log_in(browser, live_server, "vera", "pw-vera")
    browser.get(f"{live_server.url}/admin/firmware/job/")
    assert not browser.find_elements(By.CSS_SELECTOR, "a[href$='/firmware/job/add/']")
    browser.get(f"{live_server.url}/admin/firmware/firmwareversion/{version.pk}/change/")
    assert not browser.find_elements(By.XPATH, RUN_AS_JOB)
    browser.get(f"{live_server.url}/admin/firmware/job/add/?firmware={version.pk}")
    assert "403 Forbidden" in browser.page_source
    assert not browser.find_elements(By.NAME, "job_id")
