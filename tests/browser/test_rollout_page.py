"""The rollout page in headless Chromium, served by Daphne (HTTP and its WebSocket): an operator
watching a running rollout sees its counts change without reloading while the rollout engine
ticks in the test; pause works from the page; a viewer sees no buttons. Screenshots at 1366 px
and 390 px wide (docs/screenshots/rollout-*.png are copies)."""

from types import SimpleNamespace

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from firmware.rollouts import engine as rollouts
from firmware.rollouts.models import Rollout, RolloutEvent
from tests.browser.conftest import SCREENSHOTS, log_in, set_viewport, submit, text_of
from tests.conftest import make_user
from tests.firmware.helpers import at, finish, start
from tests.firmware.rollouts.test_engine import (
    fleet,
    make_rollout,
    reports_new_version,
    wave_executions,
)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def count_of(browser, wave: int, outcome: str) -> str:
    return text_of(browser, f'#wave-{wave} [data-outcome="{outcome}"] b')


def open_page(browser, url: str, username: str) -> None:
    log_in(browser, SimpleNamespace(url=url), username, "pw-" + username)
    browser.get(f"{url}/admin/firmware/rollout/r1/page/")
    WebDriverWait(browser, 15).until(
        lambda b: b.find_element(By.ID, "rollout-live-state").get_attribute("data-state") == "live"
    )


def a_running_rollout():
    rollout = make_rollout(
        fleet(12),
        [(4, {"soak_minutes": 30}), (8, {"gate": "manual"})],
        failure_threshold_percent=50,
        failure_min_finished=3,
        created_by="alice",
    )
    rollouts.tick(at(0))  # wave 1 released
    rollouts.tick(at(1))  # its devices notified
    return rollout


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)])
def test_an_operator_sees_the_counts_change_live_and_pauses(
    browser, asgi_live_server, width, height
):
    make_user("otto", "Fleet operator", is_staff=True)
    rollout = a_running_rollout()
    set_viewport(browser, width, height)
    open_page(browser, asgi_live_server, "otto")
    assert count_of(browser, 1, "notified") == "4" and count_of(browser, 1, "failed") == "0"
    page = browser.find_element(By.TAG_NAME, "html")

    # While the page is open: one device fails with details, two update, one is in progress.
    executions = sorted(wave_executions(rollout, 1), key=lambda e: e.pk)
    finish(executions[0], "FAILED", at(5), reason="checksum mismatch")
    for execution in executions[1:3]:
        start(execution, at(5))
    for execution in executions[1:3]:
        finish(execution, "SUCCEEDED", at(6))
        reports_new_version(execution, at(6))
    start(executions[3], at(6))
    rollouts.tick(at(7))

    WebDriverWait(browser, 15).until(lambda b: count_of(b, 1, "failed") == "1")
    assert count_of(browser, 1, "in_progress") == "1"
    assert browser.find_element(By.TAG_NAME, "html") == page  # the same document: no reload
    failing = browser.find_element(By.ID, "rollout-failing").text
    assert "d-000" in failing and "checksum mismatch" in failing
    browser.save_screenshot(str(SCREENSHOTS / f"rollout-running-{width}.png"))

    pause_with_reason(browser, "checking the failure")
    assert browser.find_element(By.ID, "rollout-status").text == "Paused"
    assert "paused" in browser.find_element(By.CSS_SELECTOR, ".messagelist").text
    assert Rollout.objects.get().status == "paused"
    event = RolloutEvent.objects.filter(to_status="paused").get()
    assert (event.actor, event.reason) == ("otto", "checking the failure")
    browser.find_element(By.CSS_SELECTOR, "#rollout-actions input[name=resume]")
    browser.save_screenshot(str(SCREENSHOTS / f"rollout-paused-{width}.png"))


def pause_with_reason(browser, text: str) -> None:
    """Type a reason and press Pause. The actions part is kept once the operator types into it
    (data-keep-while-typing), but a live update may still swap it between finding the button
    and the first key: then find it again in the new part."""
    for _ in range(5):
        try:
            button = browser.find_element(
                By.CSS_SELECTOR, "#rollout-actions form input[name=pause]"
            )
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
            reason = button.find_element(By.XPATH, "../input[@name='reason']")
            reason.send_keys(text)
        except StaleElementReferenceException:
            continue
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                continue
            raise
        submit(browser, button)
        return
    raise AssertionError("the actions part kept being replaced")


def test_a_viewer_sees_the_page_live_but_no_button(browser, asgi_live_server):
    make_user("vera", "Fleet viewer", is_staff=True)
    rollout = a_running_rollout()
    open_page(browser, asgi_live_server, "vera")
    assert not browser.find_elements(By.CSS_SELECTOR, "#rollout-actions form")
    assert not browser.find_elements(By.CSS_SELECTOR, "#rollout-actions input[type=submit]")
    finish(sorted(wave_executions(rollout, 1), key=lambda e: e.pk)[0], "FAILED", at(5))
    rollouts.tick(at(6))
    WebDriverWait(browser, 15).until(lambda b: count_of(b, 1, "failed") == "1")
    browser.save_screenshot(str(SCREENSHOTS / "rollout-viewer-1366.png"))
