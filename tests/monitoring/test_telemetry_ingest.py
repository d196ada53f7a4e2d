"""Telemetry through the bridge's batches into the partitioned table: one COPY per batch, bad
input dropped and counted per device, the per-device rate limit, partitions on demand and
retention, and one end-to-end message through the real broker and bridge."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone

from devices.choices import DeviceStatus
from devices.models import Device
from monitoring.telemetry import counters, ingest, partitions, tables
from tests.conftest import make_device
from tests.devices.credential_helpers import credentialed, identity_of
from tests.monitoring.telemetry_helpers import (
    clean_telemetry,  # noqa: F401 (fixture)
    counter,
    dropped_by_device,
    run_batch,
    stored,
    telemetry,
)
from tests.sql import copies, statements

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("clean_telemetry"),
]


def test_a_batch_stores_every_value_with_one_copy_and_counts_once():
    devices = [make_device(f"tm-b{n}") for n in range(10)]
    now = timezone.now()
    messages = [
        telemetry(d.device_id, {"temp": 20.5 + k, "hum": 40, "volt": 3.3}, now)
        for k in range(5)
        for d in devices
    ]

    with statements() as sent, copies() as copied:
        run_batch(messages)

    lookups = [sql for sql in sent if "WHERE device_id = ANY" in sql]
    assert (len(copied), len(lookups)) == (1, 1)
    assert len(stored()) == 150
    first = stored(devices[0].pk)
    assert sorted(v for n, _ts, v in first if n == "temp") == [20.5 + k for k in range(5)]
    assert {(n, v) for n, _ts, v in first if n != "temp"} == {("hum", 40.0), ("volt", 3.3)}
    assert {ts for _n, ts, _v in first} == {now}
    assert (counter(counters.MESSAGES), counter(counters.POINTS)) == (50, 150)
    assert counter(counters.DROPPED) == 0

    # The device pks are remembered: the next batch asks for none.
    with statements() as sent:
        run_batch(messages[:10])
    assert not [sql for sql in sent if "WHERE device_id = ANY" in sql]


def test_ts_may_be_iso_8601_or_epoch_seconds_or_milliseconds():
    device = make_device("tm-ts")
    now = timezone.now().replace(microsecond=0)
    at = now - timedelta(minutes=5)
    run_batch(
        [
            telemetry("tm-ts", {"ts": at.isoformat(), "a": 1}, now),
            telemetry("tm-ts", {"ts": at.timestamp(), "b": 2}, now),
            telemetry("tm-ts", {"ts": int(at.timestamp() * 1000), "c": 3}, now),
            telemetry("tm-ts", {"d": 4}, now),
        ]
    )
    assert stored(device.pk) == [("a", at, 1.0), ("b", at, 2.0), ("c", at, 3.0), ("d", now, 4.0)]


HOSTILE = [
    (b"not json", 1),
    (b"\xff\xfe", 1),
    (b"[1, 2, 3]", 1),
    (b'"text"', 1),
    (b"null", 1),
    (b'{"t": NaN}', 1),
    (b'{"t": Infinity}', 1),
    (b'{"t": 1e400}', 1),
    (b'{"t": "21.5"}', 1),
    (b'{"t": true}', 1),
    (b'{"t": null}', 1),
    (b'{"t": {"nested": {"deep": [1]}}}', 1),
    (b'{"t\\u0000x": 1}', 1),
    (b'{"bad name": 1}', 1),
    (b'{"": 1}', 1),
    (b'{"' + b"n" * 65 + b'": 1}', 1),
    (b'{"ts": "yesterday", "t": 1}', 1),
    (b'{"ts": "2026-12-07T10:00:00", "t": 1}', 1),  # no offset: ambiguous
    (b'{"ts": 1e300, "t": 1}', 1),
    (b'{"ts": -5, "t": 1}', 1),
    (b'{"ts": true, "t": 1}', 1),
]


@pytest.mark.parametrize(("payload", "dropped"), HOSTILE)
def test_hostile_messages_are_dropped_and_counted_for_their_device(payload, dropped):
    device = make_device("tm-bad")
    make_device("tm-good")
    now = timezone.now()
    run_batch([telemetry("tm-bad", payload, now), telemetry("tm-good", {"t": 1}, now)])

    assert stored(device.pk) == []
    assert [name for name, _ts, _v in stored()] == ["t"]  # the good device's, same batch
    assert dropped_by_device() == {"tm-bad": dropped}
    assert counter(counters.DROPPED) == dropped


def test_bad_fields_are_dropped_and_the_good_ones_kept():
    device = make_device("tm-mixed")
    now = timezone.now()
    run_batch(
        [
            telemetry(
                "tm-mixed",
                '{"ok": 1, "flag": false, "s": "x", "big": 1000000000000000000000000000000, '
                '"n\u00e9": 2}'.encode(),
                now,
            )
        ]
    )
    assert [(n, v) for n, _ts, v in stored(device.pk)] == [("big", 1e30), ("ok", 1.0)]
    assert dropped_by_device() == {"tm-mixed": 3}


def test_too_many_fields_or_a_ts_beyond_the_limits_drop_the_whole_message(settings):
    settings.TELEMETRY_MAX_FIELDS = 3
    ingest.forget()
    make_device("tm-lim")
    now = timezone.now()
    run_batch(
        [
            telemetry("tm-lim", {f"f{n}": n for n in range(4)}, now),
            telemetry("tm-lim", {"ts": (now + timedelta(hours=1)).isoformat(), "a": 1}, now),
            telemetry("tm-lim", {"ts": (now - timedelta(days=8)).timestamp(), "a": 1}, now),
        ]
    )
    assert stored() == []
    assert dropped_by_device() == {"tm-lim": 4 + 1 + 1}


def test_drops_are_logged_once_per_interval(caplog, monkeypatch):
    make_device("tm-log")
    clock = [1000.0]
    monkeypatch.setattr(ingest, "clock", lambda: clock[0])
    monkeypatch.setitem(ingest._pending_log, "logged_at", float("-inf"))
    now = timezone.now()
    with caplog.at_level(logging.WARNING, logger="monitoring.telemetry.ingest"):
        for _ in range(20):
            run_batch([telemetry("tm-log", b"junk", now)])
        clock[0] += 61
        run_batch([telemetry("tm-log", b"junk", now)])
    lines = [r.getMessage() for r in caplog.records if "dropped" in r.getMessage()]
    assert len(lines) == 2
    assert "not_json 20" in lines[1] and "tm-log 20" in lines[1]


def test_a_flooding_device_is_cut_to_its_rate_and_the_others_are_not(settings):
    settings.TELEMETRY_POINTS_PER_SECOND = 10
    settings.TELEMETRY_POINTS_BURST = 50
    ingest.forget()
    flooder, calm = make_device("tm-flood"), make_device("tm-calm")
    now = timezone.now()
    flood = [
        telemetry("tm-flood", {"a": n, "b": n, "c": n, "d": n, "e": n}, now) for n in range(200)
    ]
    steady = [
        telemetry("tm-calm", {"a": n, "b": n, "c": n, "d": n, "e": n}, now) for n in range(10)
    ]
    run_batch(flood[:100] + steady + flood[100:])

    assert len(stored(calm.pk)) == 50
    kept = len(stored(flooder.pk))
    assert 50 <= kept <= 60  # the burst, and what refilled while the batch ran
    assert dropped_by_device() == {"tm-flood": 1000 - kept}
    assert counter(counters.POINTS) == 50 + kept


def test_a_point_for_a_day_without_a_partition_creates_it():
    device = make_device("tm-day")
    now = timezone.now()
    past = now - timedelta(days=5)
    day = past.astimezone(UTC).date()
    with connection.cursor() as cursor:
        for table in tables.PARTITIONED:
            cursor.execute(f"DROP TABLE IF EXISTS {partitions.partition_name(table, day)}")
    assert day not in partitions.existing_days()

    run_batch([telemetry("tm-day", {"ts": past.isoformat(), "t": 7}, now)])

    assert stored(device.pk) == [("t", past, 7.0)]
    for table in tables.PARTITIONED:
        assert day in partitions.existing_days(table)


def test_beat_creates_the_days_ahead_and_drops_those_past_retention(settings):
    settings.TELEMETRY_RETENTION_DAYS = 30
    settings.TELEMETRY_PARTITIONS_AHEAD_DAYS = 3
    device = make_device("tm-ret")
    now = datetime.now(UTC)
    old, kept = now - timedelta(days=31), now - timedelta(days=29)
    partitions.ensure_days({old.date(), kept.date()})
    settings.TELEMETRY_MAX_PAST_SECONDS = 40 * 86400
    settings.TELEMETRY_RETENTION_DAYS = 40
    ingest.forget()
    run_batch([telemetry("tm-ret", {"ts": t.isoformat(), "v": 1}, now) for t in (old, kept)])
    assert len(stored(device.pk)) == 2
    settings.TELEMETRY_RETENTION_DAYS = 30

    _created, dropped = partitions.maintain(now)

    assert old.date() in dropped
    days = partitions.existing_days()
    assert old.date() not in days and kept.date() in days
    assert [now.date() + timedelta(days=n) for n in range(4)] == days[-4:]
    assert stored(device.pk) == [("v", kept, 1.0)]
    for table in tables.PARTITIONED:
        assert old.date() not in partitions.existing_days(table)
    assert partitions.maintain(now) == ([], [])  # again: nothing to do


def test_a_device_publishing_telemetry_has_it_stored_and_is_seen(bridge, broker, device_client):
    device = credentialed("tm-live", status=DeviceStatus.ACTIVE)
    client = device_client(identity_of(broker, device))
    client.publish("devices/tm-live/telemetry", b'{"temp": 21.5, "rssi": -70}')
    client.publish("devices/tm-live/telemetry", b"garbage")

    pk = Device.objects.get(device_id="tm-live").pk
    assert bridge.wait_until(lambda: len(stored(pk)) == 2, 10)
    assert bridge.wait_until(lambda: dropped_by_device() == {"tm-live": 1}, 5)
    assert [(n, v) for n, _ts, v in stored(pk)] == [("rssi", -70.0), ("temp", 21.5)]
    assert Device.objects.get(pk=pk).last_seen is not None
