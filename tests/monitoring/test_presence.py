"""Presence per connection: transitions from the broker's log lines fed to the handler in
chosen orders, presence messages, any message, the heartbeat sweep, batch statement counts,
the `online` filter, and hostile presence payloads."""

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from devices.choices import DeviceStatus
from devices.group_filters import compile_filters
from devices.models import Device, DeviceEvent
from fleetportal import topics
from fleetportal.bridge import router
from fleetportal.models import OutboxMessage
from monitoring.models import DeviceTypeHealth, Presence
from monitoring.presence import writes
from monitoring.presence.sweep import sweep_heartbeats
from tests.conftest import make_device

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_cache():
    writes.forget()
    yield
    writes.forget()


def log(text: str, *, at: datetime, logged: datetime | None = None) -> router.InboundMessage:
    stamp = (logged or at).strftime("%Y-%m-%dT%H:%M:%S")
    route = topics.parse(topics.BROKER_LOG_NOTICE)
    return router.InboundMessage(topics.BROKER_LOG_NOTICE, f"{stamp}: {text}".encode(), route, at)


def connect(device_id: str, peer: str, *, at: datetime, logged: datetime | None = None):
    port = settings.BROKER_DEVICE_PORT
    router.dispatch(log(f"New connection from {peer} on port {port}.", at=at, logged=logged))
    flags = f"(p2, c1, k60, u'{device_id}')"
    router.dispatch(
        log(f"New client connected from {peer} as {device_id} {flags}.", at=at, logged=logged)
    )


def disconnect(device_id: str, text: str, *, at: datetime, logged: datetime | None = None):
    router.dispatch(log(text.format(device_id), at=at, logged=logged))


def presence_message(device_id: str, payload: bytes, *, at: datetime) -> router.InboundMessage:
    topic = topics.device_topic(device_id, "presence")
    return router.InboundMessage(topic, payload, topics.parse(topic), at)


def presence(device_id: str) -> Presence | None:
    return Presence.objects.filter(device__device_id=device_id).first()


def events(device_id: str) -> list[tuple[str, str]]:
    rows = DeviceEvent.objects.filter(
        device__device_id=device_id, event_type__in=("device_online", "device_offline")
    ).order_by("created_at", "id")
    return [(e.event_type, e.event_data["reason"]) for e in rows]


@pytest.mark.django_db
def test_connect_then_disconnect_flips_presence_with_reasons_and_events():
    make_device("p-1", status=DeviceStatus.ACTIVE)
    connect("p-1", "10.0.0.1:5000", at=T0)
    row = presence("p-1")
    assert row.online and row.reason == "connected"
    assert row.connection == "10.0.0.1:5000@2026-11-28T12:00:00"
    disconnect(
        "p-1", "Client {} has exceeded timeout, disconnecting.", at=T0 + timedelta(seconds=90)
    )
    row = presence("p-1")
    assert not row.online and row.reason == "keepalive_timeout"
    assert row.disconnected_at == T0 + timedelta(seconds=90)
    assert events("p-1") == [
        ("device_online", "connected"),
        ("device_offline", "keepalive_timeout"),
    ]
    event = DeviceEvent.objects.filter(event_type="device_offline").get()
    assert event.event_data["connection"] == "10.0.0.1:5000@2026-11-28T12:00:00"
    assert event.actor == "system"


@pytest.mark.django_db
def test_a_late_disconnect_of_an_older_connection_never_marks_the_reconnected_device_offline():
    make_device("p-2", status=DeviceStatus.ACTIVE)
    connect("p-2", "10.0.0.2:5000", at=T0)
    connect("p-2", "10.0.0.2:6000", at=T0 + timedelta(seconds=20))
    # The old connection's close, time-stamped by the broker before the new connect.
    disconnect(
        "p-2",
        "Client {} closed its connection.",
        at=T0 + timedelta(seconds=21),
        logged=T0 + timedelta(seconds=10),
    )
    row = presence("p-2")
    assert row.online and row.connection.startswith("10.0.0.2:6000@")
    assert events("p-2") == [("device_online", "connected")]


@pytest.mark.django_db
def test_an_older_connect_line_arriving_late_does_not_replace_the_current_connection():
    make_device("p-3", status=DeviceStatus.ACTIVE)
    connect("p-3", "10.0.0.3:6000", at=T0 + timedelta(seconds=5), logged=T0 + timedelta(seconds=5))
    connect("p-3", "10.0.0.3:5000", at=T0 + timedelta(seconds=6), logged=T0)
    assert presence("p-3").connection.startswith("10.0.0.3:6000@")
    assert presence("p-3").connections == 1


@pytest.mark.django_db
def test_takeover_ends_the_old_connection_and_the_new_one_brings_it_back():
    make_device("p-4", status=DeviceStatus.ACTIVE)
    connect("p-4", "10.0.0.4:5000", at=T0)
    disconnect(
        "p-4", "Client {} already connected, closing old connection.", at=T0 + timedelta(seconds=30)
    )
    connect("p-4", "10.0.0.4:7000", at=T0 + timedelta(seconds=30))
    assert presence("p-4").online
    assert events("p-4") == [
        ("device_online", "connected"),
        ("device_offline", "taken_over"),
        ("device_online", "connected"),
    ]


@pytest.mark.django_db
def test_a_will_of_an_old_connection_arriving_after_the_new_connect_is_ignored():
    make_device("p-5", status=DeviceStatus.ACTIVE)
    connect("p-5", "10.0.0.5:5000", at=T0)
    connect("p-5", "10.0.0.5:6000", at=T0 + timedelta(seconds=60))
    router.dispatch(presence_message("p-5", b'{"state": "offline"}', at=T0 + timedelta(seconds=61)))
    assert presence("p-5").online
    # A will well after the connection started is this connection's: offline.
    router.dispatch(
        presence_message("p-5", b'{"state": "offline"}', at=T0 + timedelta(seconds=200))
    )
    row = presence("p-5")
    assert not row.online and row.reason == "last_will"


@pytest.mark.django_db
def test_state_messages_and_any_message_bring_a_device_online():
    make_device("p-6", status=DeviceStatus.ACTIVE)
    router.dispatch(presence_message("p-6", b'{"state": "online"}', at=T0))
    assert presence("p-6").reason == "state_online"
    router.dispatch(
        presence_message(
            "p-6", b'{"state": "offline", "graceful": true}', at=T0 + timedelta(minutes=1)
        )
    )
    assert presence("p-6").reason == "state_offline"
    telemetry = topics.device_topic("p-6", "telemetry")
    message = router.InboundMessage(
        telemetry, b"{}", topics.parse(telemetry), T0 + timedelta(minutes=5)
    )
    router.dispatch(message)
    row = presence("p-6")
    assert row.online and row.reason == "message"
    assert [r for _, r in events("p-6")] == ["state_online", "state_offline", "message"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"\x00\x00",
        b'{"state": "off\\u0000line"}',
        b"[1, 2]",
        b'{"state": 1e999}',
        b'{"state": "offline", "pad": "' + b"x" * 100_000 + b'"}',
        b"[" * 5000 + b"]" * 5000,
        b'{"state": "offline", "ts": 1e308}',
    ],
)
def test_hostile_presence_payloads_are_acknowledged_without_a_change(payload):
    make_device("p-7", status=DeviceStatus.ACTIVE)
    connect("p-7", "10.0.0.7:5000", at=T0)
    before = presence("p-7")
    router.dispatch(presence_message("p-7", payload, at=T0 + timedelta(minutes=10)))
    after = presence("p-7")
    if payload.endswith(b"1e308}"):
        # A will with an unusable "ts" is still a will: the time is ignored, not trusted.
        assert not after.online
        return
    assert (after.online, after.reason, after.changed_at) == (
        before.online,
        before.reason,
        before.changed_at,
    )


@pytest.mark.django_db
def test_a_batch_writes_presence_events_and_lifecycle_messages_in_constant_statements():
    ids = [f"b-{i}" for i in range(40)]
    for device_id in ids:
        make_device(device_id, status=DeviceStatus.ACTIVE)
    port = settings.BROKER_DEVICE_PORT
    messages = []
    for i, device_id in enumerate(ids):
        peer = f"10.1.0.{i}:4000"
        messages.append(log(f"New connection from {peer} on port {port}.", at=T0))
        messages.append(
            log(
                f"New client connected from {peer} as {device_id} (p2, c1, k60, u'{device_id}').",
                at=T0,
            )
        )
    router.begin_batch(messages)
    try:
        with CaptureQueriesContext(connection) as queries:
            for message in messages:
                router.dispatch(message)
            writes.flush()
    finally:
        router.end_batch()
    # The batch's own statements: load, upsert, events, outbox COPY and its NOTIFY (the devices'
    # last_seen and certificate first use have theirs, also one per batch or per connection).
    ours = [
        q["sql"]
        for q in queries.captured_queries
        if "monitoring_presence" in q["sql"]
        or "INSERT INTO devices_deviceevent" in q["sql"]
        or "outbox" in q["sql"].lower()
        or "pg_notify" in q["sql"]
    ]
    assert len(ours) == 5, ours  # 40 devices, 80 lines: the same five for any number
    assert Presence.objects.filter(online=True).count() == 40
    assert DeviceEvent.objects.filter(event_type="device_online").count() == 40
    assert (
        OutboxMessage.objects.filter(topic__startswith="$aws/events/presence/connected/").count()
        == 40
    )


@pytest.mark.django_db
def test_lifecycle_events_carry_awss_fields():
    make_device("l-1", status=DeviceStatus.ACTIVE)
    connect("l-1", "10.0.0.9:5000", at=T0)
    disconnect("l-1", "Client {} disconnected.", at=T0 + timedelta(seconds=5))
    import orjson

    rows = OutboxMessage.objects.filter(device_id="l-1").order_by("id")
    connected, disconnected = (orjson.loads(bytes(r.payload)) for r in rows)
    assert rows[0].topic == "$aws/events/presence/connected/l-1"
    assert connected["eventType"] == "connected" and connected["ipAddress"] == "10.0.0.9"
    assert connected["timestamp"] == int(T0.timestamp() * 1000)
    assert connected["versionNumber"] == 1
    assert disconnected["clientInitiatedDisconnect"] is True
    assert disconnected["disconnectReason"] == "CLIENT_INITIATED_DISCONNECT"
    assert disconnected["sessionIdentifier"] == connected["sessionIdentifier"]


@pytest.mark.django_db
def test_the_sweep_marks_silent_devices_offline_per_device_type_in_one_statement():
    now = T0 + timedelta(hours=1)
    DeviceTypeHealth.objects.create(device_type="meter", heartbeat_seconds=3600 * 2)
    quiet_sensor = make_device("s-1", device_type="sensor", status=DeviceStatus.ACTIVE)
    quiet_meter = make_device("s-2", device_type="meter", status=DeviceStatus.ACTIVE)
    chatty = make_device("s-3", device_type="sensor", status=DeviceStatus.ACTIVE)
    for device in (quiet_sensor, quiet_meter, chatty):
        connect(device.device_id, "10.0.0.10:1", at=T0)
    Device.objects.filter(pk__in=[quiet_sensor.pk, quiet_meter.pk]).update(last_seen=T0)
    Device.objects.filter(pk=chatty.pk).update(last_seen=now - timedelta(seconds=10))

    with CaptureQueriesContext(connection) as queries:
        swept = sweep_heartbeats(now)
    assert len(queries) == 2  # the types' heartbeats, then the sweep with its events
    assert swept == [quiet_sensor.pk]
    assert presence("s-1").reason == "heartbeat_missed" and not presence("s-1").online
    assert presence("s-2").online and presence("s-3").online
    assert events("s-1")[-1] == ("device_offline", "heartbeat_missed")


@pytest.mark.django_db
def test_online_in_the_filter_language_and_the_querysets_follows_presence():
    on = make_device("f-1", status=DeviceStatus.ACTIVE)
    never = make_device("f-2", status=DeviceStatus.ACTIVE)
    gone = make_device("f-3", status=DeviceStatus.ACTIVE)
    connect("f-1", "10.0.0.11:1", at=T0)
    connect("f-3", "10.0.0.12:1", at=T0)
    disconnect("f-3", "Client {} disconnected.", at=T0)
    # Recent last_seen everywhere: the old definition would call them all online.
    Device.objects.update(last_seen=datetime.now(UTC))
    online = {
        d.pk
        for d in Device.objects.filter(
            compile_filters({"field": "online", "op": "eq", "value": True})
        )
    }
    offline = {
        d.pk
        for d in Device.objects.filter(
            compile_filters({"field": "online", "op": "eq", "value": False})
        )
    }
    assert online == {on.pk}
    assert offline == {never.pk, gone.pk}
    assert set(Device.objects.online().values_list("pk", flat=True)) == {on.pk}
    assert {d.device_id: d.is_online for d in Device.objects.with_online()} == {
        "f-1": True,
        "f-2": False,
        "f-3": False,
    }


@pytest.mark.django_db
def test_decommissioned_and_unknown_devices_get_no_presence():
    make_device("d-1", status=DeviceStatus.DECOMMISSIONED)
    connect("d-1", "10.0.0.13:1", at=T0)
    connect("nobody", "10.0.0.14:1", at=T0)
    assert Presence.objects.count() == 0


def test_the_log_time_stamp_is_read(settings):
    from fleetportal.bridge import connections

    event = connections.read_line("2026-11-28T12:46:42: Client x disconnected.", T0)
    assert event.logged_at == datetime(2026, 11, 28, 12, 46, 42, tzinfo=UTC)
    assert dataclasses.replace(event, logged_at=None).logged_at is None


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_watched_device_page_hears_its_presence_change():
    import asyncio

    from channels.layers import get_channel_layer

    from fleetportal import live
    from shadows.writes import device_group

    device = make_device("w-1", status=DeviceStatus.ACTIVE)
    layer = get_channel_layer()

    def connect_in_thread() -> None:
        try:
            connect("w-1", "10.0.0.20:1", at=T0)
        finally:
            connection.close()  # this thread's own connection

    async def scenario():
        channel = await layer.new_channel()
        await live.join(channel, device_group(device.pk))
        try:
            await asyncio.to_thread(connect_in_thread)
            return await asyncio.wait_for(layer.receive(channel), 5)
        finally:
            await live.leave(channel, device_group(device.pk))

    event = asyncio.run(scenario())
    assert event == {"type": "presence.changed", "device_id": "w-1", "online": True}
