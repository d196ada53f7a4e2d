"""Shared fixtures: the three operator roles, an integrator token, and device helpers."""

import itertools
import os
import uuid

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from devices import credentials, last_seen, services
from devices.models import Device, DeviceGroup
from fleetportal.bridge import record

# The real-Mosquitto fixtures: broker, device_client, bridge (tests/mqtt/fixtures.py); a CA
# with a broker directory (identity_env) and a real Celery worker (tests/devices/claim_helpers.py).
pytest_plugins = ["tests.mqtt.fixtures", "tests.devices.claim_helpers"]

_serial = itertools.count(1)


@pytest.fixture(autouse=True)
def _forget_settled_devices():
    """Device ids repeat across tests; the first-connection cache must not carry over."""
    yield
    credentials.forget_settled()
    last_seen.forget()


@pytest.fixture(autouse=True)
def _own_rate_limits(settings):
    """Each test counts its own failures and requests: Redis outlives a test, and every test
    client comes from 127.0.0.1."""
    settings.RATE_LIMIT_KEY_PREFIX = f"test-limits:{uuid.uuid4().hex}"


# The session's own hash of how far the record of device messages reaches
# (fleetportal.bridge.record), also in the environment the test Celery workers start with.
MESSAGE_RECORD_KEY = os.environ["FLEETPORTAL_MESSAGE_RECORD_KEY"] = (
    f"test-record:{uuid.uuid4().hex}"
)


@pytest.fixture(autouse=True)
def _own_message_record(settings):
    """Each test starts with no consumer reporting: none left behind by an earlier test holds
    the record back (a bridge of this test writes its own within a second)."""
    settings.MESSAGE_RECORD_KEY = MESSAGE_RECORD_KEY
    record.reset()


def make_user(username: str, role: str | None = None, **extra) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username, **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(db):
    return make_user("vera", "Fleet viewer", is_staff=True)


@pytest.fixture
def operator(db):
    return make_user("otto", "Fleet operator", is_staff=True)


@pytest.fixture
def fleet_admin(db):
    return make_user("ada", "Fleet admin", is_staff=True)


def token_client(user: User) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def viewer_api(viewer):
    return token_client(viewer)


@pytest.fixture
def operator_api(operator):
    return token_client(operator)


@pytest.fixture
def admin_api(fleet_admin):
    return token_client(fleet_admin)


def make_device(device_id: str | None = None, *, status: str | None = None, **fields) -> Device:
    """Register a device through the service (so it has its history), then set its status."""
    n = next(_serial)
    fields.setdefault("device_type", "sensor")
    device = services.register_device(
        {"device_id": device_id or f"dev-{n:05d}", **fields}, actor="system"
    )
    if status and status != device.status:
        Device.objects.filter(pk=device.pk).update(status=status)
        device.refresh_from_db()
    return device


def make_group(name: str = "building-a", **fields) -> DeviceGroup:
    return DeviceGroup.objects.create(name=name, **fields)


@pytest.fixture
def last_seen_online(monkeypatch):
    """devices' own definition of online (last_seen within the window) instead of monitoring's
    presence: for the tests of that default."""
    from devices import online

    monkeypatch.setattr(online, "_defined", [])
