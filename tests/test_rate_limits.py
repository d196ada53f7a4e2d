"""Failed logins lock a username or address out, refused tokens lock an address or a device out,
and the APIs have request rates: 429 with Retry-After, one security event per lockout."""

import jwt
import pytest
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from devices.choices import DeviceStatus, EventType
from devices.models import DeviceEvent
from fleetportal import rate_limits
from fleetportal.models import SecurityEvent
from tests.conftest import make_user, token_client
from tests.devices.credential_helpers import bearer, credentialed, new_key, pki_ready  # noqa: F401

pytestmark = pytest.mark.django_db
LOGIN = "/admin/login/"
WHOAMI = "/device/v1/whoami"


def limit(settings, name: str, allowed: int, window: int = 900, lockout: int = 900) -> None:
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, name: (allowed, window, lockout)}


def log_in(client: Client, username: str, password: str, address: str = "127.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


# --- the console's login --------------------------------------------------------------------


def test_ten_wrong_passwords_lock_the_user_out_even_for_the_right_one():
    make_user("ada", "Fleet admin", is_staff=True)
    client = Client()
    for _ in range(10):
        assert log_in(client, "ada", "guess").status_code == 200
    response = log_in(client, "ada", "pw-ada")
    assert response.status_code == 429
    assert 850 < int(response["Retry-After"]) <= 900
    assert b"Too many failed logins" in response.content
    assert not logged_in(client)
    event = SecurityEvent.objects.get()
    assert (event.limit, event.subject, event.address) == ("admin-login-user", "ada", "127.0.0.1")


def test_fewer_failures_then_the_right_password_logs_in_and_starts_the_count_again():
    make_user("ada", "Fleet admin", is_staff=True)
    client = Client()
    for _ in range(9):
        log_in(client, "ada", "guess")
    assert log_in(client, "ada", "pw-ada").status_code == 302
    assert logged_in(client)
    other = Client()
    for _ in range(9):
        log_in(other, "ada", "guess")
    assert log_in(other, "ada", "pw-ada").status_code == 302, "the success cleared the count"
    assert not SecurityEvent.objects.exists()


def test_an_address_trying_many_usernames_is_locked_out(settings):
    limit(settings, "admin-login-address", 3)
    make_user("ada", "Fleet admin", is_staff=True)
    client = Client()
    for name in ("a", "b", "c"):
        log_in(client, name, "guess", address="10.0.0.7")
    assert log_in(client, "ada", "pw-ada", address="10.0.0.7").status_code == 429
    assert log_in(client, "ada", "pw-ada", address="10.0.0.8").status_code == 302
    assert SecurityEvent.objects.get().subject == "10.0.0.7"


def test_a_hostile_username_is_counted_and_recorded_readably(settings):
    limit(settings, "admin-login-user", 2)
    client = Client()
    hostile = "ada\x00" + "x" * 500
    assert [log_in(client, hostile, "guess").status_code for _ in range(3)] == [200, 200, 429]
    assert SecurityEvent.objects.get().subject.startswith("ada\\x00xxx")


# --- API tokens -----------------------------------------------------------------------------


def test_refused_api_tokens_lock_the_address_out_for_good_tokens_too(settings, fleet_admin):
    limit(settings, "api-token-address", 5)
    good = Token.objects.create(user=fleet_admin).key
    for n in range(5):
        response = APIClient().get(
            "/api/v1/devices/", HTTP_AUTHORIZATION=f"Token bad{n}", REMOTE_ADDR="10.1.1.1"
        )
        assert response.status_code == 401
    response = APIClient().get(
        "/api/v1/devices/", HTTP_AUTHORIZATION=f"Token {good}", REMOTE_ADDR="10.1.1.1"
    )
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many refused API tokens" in response.json()["detail"]
    elsewhere = APIClient().get(
        "/api/v1/devices/", HTTP_AUTHORIZATION=f"Token {good}", REMOTE_ADDR="10.1.1.2"
    )
    assert elsewhere.status_code == 200
    event = SecurityEvent.objects.get()
    assert (event.limit, event.subject) == ("api-token-address", "10.1.1.1")


def test_each_user_has_a_request_rate(settings, operator):
    limit(settings, "api-user", 3, window=60, lockout=0)
    api = token_client(operator)
    assert [api.get("/api/v1/devices/").status_code for _ in range(3)] == [200] * 3
    response = api.get("/api/v1/devices/")
    assert response.status_code == 429
    assert 0 < int(response["Retry-After"]) <= 60
    other = token_client(make_user("olga", "Fleet operator", is_staff=True))
    assert other.get("/api/v1/devices/").status_code == 200


# --- the HTTP device API ----------------------------------------------------------------------


@pytest.mark.usefixtures("pki_ready")
def test_refused_device_tokens_lock_that_device_out_and_say_so_in_its_timeline(settings):
    limit(settings, "device-auth-device", 4, window=300, lockout=300)
    device = credentialed(status=DeviceStatus.ACTIVE)
    forged = jwt.encode(
        {"iss": device.device_id, "iat": 0, "exp": 2**31}, new_key(), algorithm="ES256"
    )
    for n in range(4):
        response = APIClient().get(WHOAMI, REMOTE_ADDR=f"10.2.0.{n}", **bearer(forged))
        assert response.status_code == 401
    response = APIClient().get(WHOAMI, REMOTE_ADDR="10.2.0.9", **bearer(device.jwt()))
    assert response.status_code == 429
    assert 290 < int(response["Retry-After"]) <= 300
    other = credentialed(status=DeviceStatus.ACTIVE)
    assert APIClient().get(WHOAMI, **bearer(other.jwt())).status_code == 200
    locked = DeviceEvent.objects.get(device=device.device, event_type=EventType.LOCKED_OUT)
    assert locked.event_data["seconds"] == 300
    assert SecurityEvent.objects.get().subject == device.device_id


@pytest.mark.usefixtures("pki_ready")
def test_an_unknown_device_id_is_locked_out_the_same_way(settings):
    limit(settings, "device-auth-device", 2, window=300, lockout=300)
    token = jwt.encode({"iss": "no-such-device", "iat": 0, "exp": 2**31}, new_key(), "ES256")
    codes = [APIClient().get(WHOAMI, **bearer(token)).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    assert SecurityEvent.objects.get().subject == "no-such-device"
    assert not DeviceEvent.objects.filter(event_type=EventType.LOCKED_OUT).exists()


@pytest.mark.usefixtures("pki_ready")
def test_an_address_sending_refused_device_tokens_is_locked_out(settings):
    limit(settings, "device-auth-address", 3, window=300, lockout=300)
    device = credentialed(status=DeviceStatus.ACTIVE)
    for n in range(3):
        token = jwt.encode({"iss": f"probe-{n}", "iat": 0, "exp": 2**31}, new_key(), "ES256")
        APIClient().get(WHOAMI, REMOTE_ADDR="10.3.0.1", **bearer(token))
    assert (
        APIClient().get(WHOAMI, REMOTE_ADDR="10.3.0.1", **bearer(device.jwt())).status_code == 429
    )
    assert (
        APIClient().get(WHOAMI, REMOTE_ADDR="10.3.0.2", **bearer(device.jwt())).status_code == 200
    )


@pytest.mark.usefixtures("pki_ready")
def test_each_device_has_a_request_rate(settings):
    limit(settings, "device-api-device", 2, window=60, lockout=0)
    one, two = (credentialed(status=DeviceStatus.ACTIVE) for _ in range(2))
    codes = [APIClient().get(WHOAMI, **bearer(one.jwt())).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert APIClient().get(WHOAMI, **bearer(two.jwt())).status_code == 200


@pytest.mark.usefixtures("pki_ready")
def test_each_address_has_a_request_rate(settings):
    limit(settings, "device-api-address", 3, window=60, lockout=0)
    devices = [credentialed(status=DeviceStatus.ACTIVE) for _ in range(4)]
    codes = [APIClient().get(WHOAMI, **bearer(each.jwt())).status_code for each in devices]
    assert codes == [200, 200, 200, 429]
    response = APIClient().get(WHOAMI, REMOTE_ADDR="10.4.0.1", **bearer(devices[3].jwt()))
    assert response.status_code == 200


# --- Redis away -------------------------------------------------------------------------------


def test_without_redis_logins_still_work(settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    rate_limits._redis.cache_clear()
    try:
        make_user("ada", "Fleet admin", is_staff=True)
        client = Client()
        log_in(client, "ada", "guess")
        assert log_in(client, "ada", "pw-ada").status_code == 302
    finally:
        rate_limits._redis.cache_clear()
