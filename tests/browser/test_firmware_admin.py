"""A Fleet admin uploads a firmware image in the admin, in headless Chromium: the upload goes out
with a progress bar and lands signed in the catalog; the pages are captured at 1366 and 390 px."""

import pytest
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from firmware.models import FirmwareVersion
from tests.browser.conftest import SCREENSHOTS, log_in, set_viewport
from tests.conftest import make_device, make_user
from tests.firmware.catalog_helpers import firmware_env, image  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WATCH_UPLOAD = """
const send = XMLHttpRequest.prototype.send;
XMLHttpRequest.prototype.send = function (body) {
  if (document.querySelector('progress')) { sessionStorage.setItem('bar', 'shown'); }
  this.upload.addEventListener('progress', function (p) {
    if (p.lengthComputable) {
      sessionStorage.setItem('sent', String(Math.round(100 * p.loaded / p.total)));
    }
  });
  return send.call(this, body);
};
"""


@pytest.mark.parametrize(("width", "height"), [(1366, 768), (390, 844)])
def test_an_admin_uploads_firmware_with_a_progress_bar_and_sees_it_signed(
    browser,
    live_server,
    firmware_env,  # noqa: F811
    tmp_path,
    width,
    height,
):
    make_user("ada", "Fleet admin", is_staff=True)
    make_device("fw-page-1", device_type="sensor")
    artifact = tmp_path / "sensor-3.1.0.bin"
    artifact.write_bytes(image(2_000_000))
    set_viewport(browser, width, height)
    log_in(browser, live_server, "ada", "pw-ada")

    browser.get(f"{live_server.url}/admin/firmware/firmwareversion/add/")
    browser.find_element("name", "device_type").send_keys("sensor")
    browser.find_element("name", "version").send_keys("3.1.0")
    browser.find_element("name", "file").send_keys(str(artifact))
    browser.save_screenshot(str(SCREENSHOTS / f"firmware-upload-{width}.png"))
    # A local upload is over in an instant: note in sessionStorage (it survives the redirect)
    # what the page's upload did, rather than trying to catch the bar on screen.
    browser.execute_script(WATCH_UPLOAD)
    browser.find_element("css selector", "input[name=_save]").click()
    WebDriverWait(browser, 20).until(expected_conditions.url_matches(r"/firmwareversion/(\?.*)?$"))
    watched = browser.execute_script(
        "return [sessionStorage.getItem('bar'), sessionStorage.getItem('sent')];"
    )
    assert watched == ["shown", "100"], watched  # sent with a progress bar, to the last byte

    firmware = FirmwareVersion.objects.get(device_type="sensor", version="3.1.0")
    assert firmware.file_size == 2_000_000 and firmware.is_latest
    assert firmware.manifest_signature
    assert "3.1.0" in browser.find_element("id", "result_list").text
    assert "was added successfully" in browser.find_element("css selector", ".messagelist").text
    browser.save_screenshot(str(SCREENSHOTS / f"firmware-list-{width}.png"))
    browser.get(f"{live_server.url}/admin/firmware/firmwareversion/{firmware.pk}/change/")
    assert firmware.checksum in browser.page_source
    browser.save_screenshot(str(SCREENSHOTS / f"firmware-version-{width}.png"))
