"""The management commands `make run` relies on: ensuredb, checkservices, createadmin, seed_demo."""

import re
import uuid
from io import StringIO

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from devices.choices import DeviceStatus as S
from devices.choices import EventType
from devices.models import Device, DeviceEvent, DeviceGroup
from fleetportal.management.commands.ensuredb import server_conninfo


def run(*args, **options) -> str:
    out = StringIO()
    call_command(*args, stdout=out, **options)
    return out.getvalue()


# --- ensuredb ---------------------------------------------------------------------------------


@pytest.fixture
def scratch_database(monkeypatch):
    """Point the settings at a database that does not exist yet; drop it afterwards."""
    name = f"fp scratch-{uuid.uuid4().hex[:8]}"  # a space and a dash: the name must be quoted
    db = {**settings.DATABASES["default"], "NAME": name}
    monkeypatch.setattr(settings, "DATABASES", {**settings.DATABASES, "default": db})
    yield name
    with psycopg.connect(**server_conninfo(db), dbname="postgres", autocommit=True) as conn:
        conn.execute(
            psycopg.sql.SQL("DROP DATABASE IF EXISTS {}").format(psycopg.sql.Identifier(name))
        )


def database_exists(name: str) -> bool:
    db = settings.DATABASES["default"]
    with psycopg.connect(**server_conninfo(db), dbname="postgres") as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
    return row is not None


def test_ensuredb_creates_the_missing_database_once(scratch_database):
    assert f"Created database '{scratch_database}'" in run("ensuredb")
    assert database_exists(scratch_database)
    assert f"Database '{scratch_database}' exists" in run("ensuredb")


def test_ensuredb_says_which_server_it_cannot_reach(monkeypatch):
    db = {**settings.DATABASES["default"], "HOST": "127.0.0.1", "PORT": "1"}
    monkeypatch.setattr(settings, "DATABASES", {**settings.DATABASES, "default": db})
    with pytest.raises(CommandError, match=r"Cannot reach PostgreSQL at 127\.0\.0\.1:1\b"):
        run("ensuredb")


# --- checkservices ----------------------------------------------------------------------------


def test_checkservices_passes_when_postgres_and_redis_answer():
    assert "reachable" in run("checkservices")


def test_checkservices_names_an_unreachable_redis_without_its_password(monkeypatch):
    monkeypatch.setattr(settings, "REDIS_URL", "redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(CommandError, match=r"Redis at 127\.0\.0\.1:1 does not answer") as failed:
        run("checkservices")
    assert "hunter2" not in str(failed.value)


# --- createadmin ------------------------------------------------------------------------------


def printed_password(output: str) -> str | None:
    match = re.search(r"password: (\S+)", output)
    return match.group(1) if match else None


@pytest.mark.django_db
def test_createadmin_prints_a_working_password_once():
    first = run("createadmin")
    password = printed_password(first)

    assert password and len(password) >= 20
    user = authenticate(username="admin", password=password)
    assert user is not None and user.is_superuser and user.is_staff

    second = run("createadmin")
    assert printed_password(second) is None
    assert "exists" in second
    assert authenticate(username="admin", password=password) is not None


@pytest.mark.django_db
def test_createadmin_reset_password_replaces_the_old_one():
    old = printed_password(run("createadmin", username="root-ops"))

    new = printed_password(run("createadmin", username="root-ops", reset_password=True))

    assert new and new != old
    assert authenticate(username="root-ops", password=new) is not None
    assert authenticate(username="root-ops", password=old) is None
    assert get_user_model().objects.filter(username="root-ops").count() == 1


# --- seed_demo --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.usefixtures("last_seen_online")  # presence is seeded by seed_demo_presence
def test_seed_demo_builds_a_fleet_in_every_status_with_real_history():
    run("seed_demo", devices=60)

    assert Device.objects.count() == 60
    assert DeviceGroup.objects.filter(name__in=["warehouse-berlin", "field-sensors"]).count() == 2
    assert set(Device.objects.values_list("status", flat=True)) == set(S.values)
    assert Device.objects.online().exists()
    assert Device.objects.values("device_type").distinct().count() >= 3
    for device in Device.objects.exclude(status=S.REGISTERED):
        last = device.events.filter(event_type=EventType.STATUS_CHANGED).latest("created_at")
        assert last.event_data["to"] == device.status


@pytest.mark.django_db
def test_seed_demo_run_twice_adds_nothing():
    run("seed_demo", devices=30)
    counts = (Device.objects.count(), DeviceEvent.objects.count(), DeviceGroup.objects.count())

    output = run("seed_demo", devices=30)

    assert "0 devices added, 30 already there" in output
    assert (
        Device.objects.count(),
        DeviceEvent.objects.count(),
        DeviceGroup.objects.count(),
    ) == counts


@pytest.mark.django_db
def test_seed_demo_with_a_larger_fleet_adds_only_the_missing_devices():
    run("seed_demo", devices=10)
    assert "5 devices added, 10 already there" in run("seed_demo", devices=15)
    assert Device.objects.count() == 15
