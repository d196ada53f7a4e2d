"""Signed download URLs (expiry, tampering) and HTTP ranges: 206, 416, If-Range, ETag, and a
download interrupted half-way that resumes to the right SHA-256."""

import hashlib
import time
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.test import Client

from firmware import catalog, downloads
from tests.conftest import make_device
from tests.firmware.catalog_helpers import add, firmware_env, image  # noqa: F401 - a fixture

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("firmware_env")]

DATA = image(700_001)


@pytest.fixture
def firmware():
    return add("1.0.0", DATA)


def get(url: str, **headers):
    parts = urlsplit(url)
    return Client().get(f"{parts.path}?{parts.query}", headers=headers)


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query)) | changes
    return f"{parts.path}?{urlencode(query)}"


# --- signed URLs --------------------------------------------------------------------------------


def test_a_signed_url_serves_the_whole_artifact(settings, firmware):
    settings.PUBLIC_URL = "https://fleet.example"
    url = downloads.signed_url(firmware)
    assert url.startswith(f"https://fleet.example/device/v1/firmware/{firmware.pk}/download?")
    response = get(url)
    assert response.status_code == 200
    assert body(response) == DATA
    assert response["Content-Length"] == str(len(DATA))
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert response["Content-Type"] == "application/octet-stream"


def test_a_signed_url_expires(settings, firmware):
    settings.FIRMWARE_URL_SECONDS = 60
    url = downloads.signed_url(firmware, now=time.time() - 61)
    response = get(url)
    assert response.status_code == 403
    assert "expired" in response.json()["detail"]


@pytest.mark.parametrize(
    "changes",
    [
        {"expires": str(int(time.time()) + 10**6)},
        {"signature": "0" * 64},
        {"device": "someone-else"},
        {"signature": ""},
    ],
)
def test_a_tampered_signed_url_is_refused(firmware, changes):
    url = with_query(downloads.signed_url(firmware, make_device()), **changes)
    response = get(url)
    assert response.status_code == 403
    assert "not valid" in response.json()["detail"]


def test_a_signed_url_for_one_version_does_not_open_another(firmware):
    other = add("1.1.0")
    url = downloads.signed_url(firmware).replace(str(firmware.pk), str(other.pk))
    assert get(url).status_code == 403


def test_the_url_key_setting_signs_instead_of_the_secret_key(settings, firmware):
    url = downloads.signed_url(firmware)
    settings.FIRMWARE_URL_KEY = "a-separate-download-key"
    assert get(url).status_code == 403
    assert get(downloads.signed_url(firmware)).status_code == 200


def test_a_url_only_version_is_downloaded_from_the_operators_url():
    make_device(device_type="sensor")
    hosted = catalog.add_version(
        device_type="sensor",
        version="9",
        artifact=catalog.Artifact(
            file_url="https://cdn.example/fw-9.bin", file_size=10, checksum="cd" * 32
        ),
        actor="ada",
    )
    assert downloads.signed_url(hosted) == "https://cdn.example/fw-9.bin"


# --- ranges -----------------------------------------------------------------------------------


def test_a_range_is_answered_206_with_its_content_range(firmware):
    response = get(downloads.signed_url(firmware), Range="bytes=100-199")
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes 100-199/{len(DATA)}"
    assert response["Content-Length"] == "100"
    assert body(response) == DATA[100:200]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=-10", DATA[-10:]),
        ("bytes=700000-", DATA[700000:]),
        ("bytes=0-99999999", DATA),
        ("bytes=0-0", DATA[:1]),
    ],
)
def test_open_suffix_and_clamped_ranges(firmware, header, expected):
    response = get(downloads.signed_url(firmware), Range=header)
    assert response.status_code == 206
    assert body(response) == expected


def test_a_range_past_the_end_is_416_with_the_size(firmware):
    response = get(downloads.signed_url(firmware), Range=f"bytes={len(DATA)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=x-"])
def test_several_ranges_or_a_range_we_cannot_read_get_the_whole_file(firmware, header):
    response = get(downloads.signed_url(firmware), Range=header)
    assert response.status_code == 200
    assert body(response) == DATA


def test_if_range_with_the_etag_resumes_and_with_another_sends_everything(firmware):
    url = downloads.signed_url(firmware)
    tag = f'"{firmware.checksum}"'
    assert get(url, Range="bytes=10-", **{"If-Range": tag}).status_code == 206
    stale = get(url, Range="bytes=10-", **{"If-Range": '"' + "0" * 64 + '"'})
    assert stale.status_code == 200
    assert body(stale) == DATA
    dated = get(url, Range="bytes=10-", **{"If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert dated.status_code == 200


def test_an_interrupted_download_resumes_and_the_sha256_matches(firmware):
    url = downloads.signed_url(firmware)
    first = get(url)
    received = b""
    for chunk in first.streaming_content:
        received += chunk
        if len(received) >= len(DATA) // 2:
            break
    # The connection drops half-way (the client stops reading; closing the test client's
    # response would also end the test's database connection).
    assert 0 < len(received) < len(DATA)
    rest = get(url, Range=f"bytes={len(received)}-", **{"If-Range": first["ETag"]})
    assert rest.status_code == 206
    joined = received + body(rest)
    assert hashlib.sha256(joined).hexdigest() == firmware.checksum


def test_head_gives_the_headers_without_a_body(firmware):
    parts = urlsplit(downloads.signed_url(firmware))
    response = Client().head(f"{parts.path}?{parts.query}", headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response["Content-Length"] == "10"
    assert response.content == b""


def test_parse_range_is_strict_about_what_it_honours():
    assert downloads.parse_range(None, 10) is None
    assert downloads.parse_range("bytes=2-4", 10) == downloads.ByteRange(2, 4)
    assert downloads.parse_range("bytes=-100", 10) == downloads.ByteRange(0, 9)
    assert downloads.parse_range("bytes=²-4", 10) is None
    with pytest.raises(downloads.Unsatisfiable):
        downloads.parse_range("bytes=-0", 10)
    with pytest.raises(downloads.Unsatisfiable):
        downloads.parse_range("bytes=10-20", 10)
