"""Headless Chromium (Debian's /usr/bin/chromium and its chromedriver) against the live server."""

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get("FLEETPORTAL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("FLEETPORTAL_CHROMEDRIVER", "/usr/bin/chromedriver")
# Each run's screenshots (look at them); the ones in docs/screenshots/ are copies of these.
SCREENSHOTS = Path(
    os.environ.get(
        "FLEETPORTAL_SCREENSHOT_DIR", Path(__file__).resolve().parents[2] / "var" / "screenshots"
    )
)
SCREENSHOTS.mkdir(parents=True, exist_ok=True)


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1366,768")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(2)
    try:
        yield driver
    finally:
        driver.quit()


def log_in(browser, live_server, username: str, password: str) -> None:
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element("name", "username").send_keys(username)
    browser.find_element("name", "password").send_keys(password)
    submit(browser, browser.find_element("css selector", "input[type=submit]"))


def submit(browser, button, timeout: float = 10) -> None:
    """Click a form's button and wait until the browser has left the page (the answer loaded)."""
    page = browser.find_element("tag name", "html")
    button.click()
    WebDriverWait(browser, timeout).until(expected_conditions.staleness_of(page))


def submit_live(browser, selector: str, timeout: float = 10) -> None:
    """`submit` on a live page: find the element again if a live update swapped it between
    finding and clicking it."""
    for _ in range(20):
        try:
            submit(browser, browser.find_element(By.CSS_SELECTOR, selector), timeout)
            return
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{selector} kept being replaced")


def text_of(browser, selector: str) -> str:
    """An element's text on a live page; read again if a live update swapped it meanwhile."""
    for _ in range(20):
        try:
            return browser.find_element(By.CSS_SELECTOR, selector).text
        except StaleElementReferenceException:
            continue
    raise AssertionError(f"{selector} kept being replaced")


def set_viewport(browser, width: int, height: int) -> None:
    """The page's own size (the window's outer size includes no chrome in headless mode)."""
    browser.set_window_size(width, height)


def _asgi_application():
    # Module level so the server process can build it (pickled by reference).
    from channels.routing import get_default_application
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    return ASGIStaticFilesHandler(get_default_application())


@pytest.fixture
def asgi_live_server(transactional_db):
    """Daphne serving the ASGI application (HTTP and the live pages' WebSockets) in a process
    of its own on the test database, as channels' ChannelsLiveServerTestCase does; pytest-django's
    live_server speaks WSGI only. Yields its base URL."""
    # Forked: the process inherits the settings pytest-django already pointed at the test
    # database (channels' set_database_connection would prefix the name a second time).
    # Nor may it inherit this process's sync-to-async worker: a test that ran a consumer under
    # Channels' communicator started that thread here, and a fork copies the executor without
    # its thread, so the server's database_sync_to_async calls would wait for ever.
    from asgiref.sync import SyncToAsync
    from daphne.testing import DaphneProcess

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
    server = DaphneProcess("localhost", _asgi_application)
    server.start()
    try:
        if not server.ready.wait(timeout=30):
            raise RuntimeError("Daphne did not start")
        yield f"http://localhost:{server.port.value}"
    finally:
        server.terminate()
        server.join()
