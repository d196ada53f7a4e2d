"""A refused shadow request answers the same way through every door: shadows.errors maps a
ShadowError to HTTP (integrator REST, device HTTP API) and to the MQTT rejected document."""

from datetime import UTC, datetime

import orjson
import pytest

from fleetportal.models import OutboxMessage
from shadows import errors, services
from shadows.document import InvalidRequest, ShadowNotFound, VersionConflict
from tests.conftest import make_user, token_client
from tests.devices.credential_helpers import credentialed, pki_ready  # noqa: F401
from tests.shadows.test_device_api import call

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_http_error_is_the_code_as_status_and_awss_document():
    error = VersionConflict(expected=1, current=2, client_token="t1")

    assert errors.http_error(error) == (
        409,
        {"code": 409, "message": "Version conflict", "clientToken": "t1"},
    )
    assert errors.http_error(error, now=NOW)[1]["timestamp"] == int(NOW.timestamp())


def test_the_rejected_document_echoes_the_raw_payloads_token_when_the_error_has_none():
    error = ShadowNotFound("dev-x")

    document = errors.rejected_document(error, now=NOW, payload=b'{"clientToken":"abc"}')

    assert document == {
        "code": 404,
        "message": "No shadow exists with name: 'dev-x'",
        "clientToken": "abc",
        "timestamp": int(NOW.timestamp()),
    }
    unreadable = errors.rejected_document(InvalidRequest(), now=NOW, payload=b"{not json")
    assert "clientToken" not in unreadable


@pytest.mark.django_db
@pytest.mark.usefixtures("pki_ready")
def test_a_version_conflict_answers_alike_over_rest_the_device_api_and_mqtt():
    device = credentialed("dev-errors")
    services.set_desired(device.device, "", {"a": 1}, actor="x")
    stale = {"state": {"desired": {"a": 2}}, "version": 7, "clientToken": "c1"}
    expected = VersionConflict(expected=7, current=1, client_token="c1")

    rest = token_client(make_user("otto", "Fleet operator")).patch(
        "/api/v1/devices/dev-errors/shadows/~classic/",
        {"desired": {"a": 2}, "version": 7},
        format="json",
    )
    http = call(device, "post", orjson.dumps(stale))
    services.handle_request("update", "dev-errors", "", orjson.dumps(stale), now=NOW)

    rest_expected = VersionConflict(expected=7, current=1)
    assert (rest.status_code, rest.json()) == errors.http_error(rest_expected)
    body = http.json()
    assert (http.status_code, body) == errors.http_error(
        expected, now=datetime.fromtimestamp(body["timestamp"], UTC)
    )
    rejected = OutboxMessage.objects.get(topic="$aws/things/dev-errors/shadow/update/rejected")
    assert orjson.loads(bytes(rejected.payload)) == errors.rejected_document(expected, now=NOW)
