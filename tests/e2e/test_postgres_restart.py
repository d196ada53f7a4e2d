"""Reliability of the real bridge process when PostgreSQL restarts under load.

The machine's shared PostgreSQL cluster serves other test sessions and must not be restarted, so
this test runs a private cluster (tests/e2e/private_postgres.py): migrated with `manage.py
migrate`, devices and their certificates issued there by the portal, and a real `manage.py
runbridge` on it and on this session's Mosquitto. Devices publish numbered QoS 1 shadow updates
while the cluster is restarted twice: once cleanly (`pg_ctl stop -m fast`), once crash-like
(`-m immediate`, recovery from the WAL at start). Every update the broker acknowledged must be
applied exactly once, every accepted reply must reach its device, and the bridge must keep
serving without a restart of its own.
"""

import json
import queue
import subprocess
import sys
import threading
import time

import orjson
import psycopg
import pytest

from devices.models import Device
from fleetportal.models import OutboxMessage
from shadows.models import Shadow, ShadowHistory
from tests.e2e.bridge_process import (
    ROOT,
    BridgeProcess,
    bridge_env,
    persistent_bridge_session,
    wait_until,
)
from tests.e2e.private_postgres import PostgresUnavailable, PrivatePostgres
from tests.mqtt.clients import DeviceClient, write_identity

DATABASE = "fleetportal"
DEVICES = 4
UPDATES = 400  # per device
PUBLISH_INTERVAL = 0.012  # seconds between one device's updates: ~6 s of load in all
DOWN_FOR = 1.0  # seconds the cluster stays down at each restart
# How to restart, and when: once this share of all updates is applied, or (None) as soon as
# the bridge commits again after the previous restart, while it works through the backlog.
RESTARTS = [("fast", 0.2), ("immediate", None), ("immediate", 0.7)]
RECOVERY_LIMIT = 20.0  # seconds; the bridge's retry backoff tops out at 5 s

CREATE_DEVICES = """
import json
from devices import credentials, services
from devices.choices import DeviceStatus
from devices.models import Device
identities = {}
for device_id in %r:
    device = services.register_device(
        {"device_id": device_id, "device_type": "sensor"}, actor="system"
    )
    credential, key_pem = credentials.issue_credential(device, actor="system")
    Device.objects.filter(pk=device.pk).update(status=DeviceStatus.ACTIVE)
    identities[device_id] = [key_pem, credential.credential_value]
print(json.dumps(identities))
"""


@pytest.fixture
def private_postgres():
    try:
        cluster = PrivatePostgres()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))  # the binaries are part of this machine: a skip would hide it
    try:
        cluster.init()
        cluster.start()
        cluster.create_database(DATABASE)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def portal_env(broker, private_postgres) -> dict[str, str]:
    """The environment of manage.py commands on the private cluster and this session's broker."""
    env = {**bridge_env(broker), "DATABASE_URL": private_postgres.url(DATABASE)}
    manage(env, "migrate", "--verbosity", "0")
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture
def devices(broker, portal_env, device_client) -> dict[str, DeviceClient]:
    """Active devices registered in the private database, connected with portal-issued certs."""
    device_ids = [f"pg-restart-{n}" for n in range(1, DEVICES + 1)]
    output = manage(portal_env, "shell", "--no-imports", "-c", CREATE_DEVICES % device_ids)
    issued = json.loads(output.splitlines()[-1])
    clients = {}
    for device_id, (key_pem, cert_pem) in issued.items():
        identity = write_identity(broker.dir / "clients", device_id, key_pem, cert_pem)
        clients[device_id] = device_client(identity)
        clients[device_id].subscribe(accepted_topic(device_id))
    return clients


@pytest.fixture
def bridge_process(broker, portal_env, tmp_path):
    with persistent_bridge_session():
        process = BridgeProcess(broker, tmp_path / "bridge.log")
        process.env = portal_env
        yield process
        process.stop()


def update_topic(device_id: str) -> str:
    return f"$aws/things/{device_id}/shadow/update"


def accepted_topic(device_id: str) -> str:
    return f"$aws/things/{device_id}/shadow/update/accepted"


class Database:
    """Reads of the private database; a fresh connection each time, as the server comes and goes."""

    def __init__(self, cluster: PrivatePostgres):
        self.cluster = cluster

    def query(self, sql: str, params=()) -> list[tuple] | None:
        """The rows, or None while the server is unreachable."""
        try:
            with self.cluster.connect(DATABASE) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.OperationalError:
            return None

    def applied(self) -> int | None:
        """How many shadow versions exist in all (None while the server is down)."""
        rows = self.query(f"SELECT count(*) FROM {ShadowHistory._meta.db_table}")  # noqa: S608
        return None if rows is None else rows[0][0]

    def outbox_size(self) -> int | None:
        rows = self.query(f"SELECT count(*) FROM {OutboxMessage._meta.db_table}")  # noqa: S608
        return None if rows is None else rows[0][0]

    def history(self, device_id: str) -> list[tuple[int, str]]:
        """(version, clientToken) of the device's classic shadow, oldest first."""
        return self.query(
            f"SELECT h.version, h.client_token FROM {ShadowHistory._meta.db_table} h "  # noqa: S608
            f"JOIN {Shadow._meta.db_table} s ON s.id = h.shadow_id "
            f"JOIN {Device._meta.db_table} d ON d.id = s.device_id "
            "WHERE d.device_id = %s AND s.name = '' ORDER BY h.version, h.id",
            [device_id],
        )

    def shadow(self, device_id: str) -> tuple[int, dict]:
        (row,) = self.query(
            f"SELECT s.version, s.reported_state FROM {Shadow._meta.db_table} s "  # noqa: S608
            f"JOIN {Device._meta.db_table} d ON d.id = s.device_id "
            "WHERE d.device_id = %s AND s.name = ''",
            [device_id],
        )
        return row


def publish_sequence(client: DeviceClient, acknowledged: list[int]) -> None:
    """UPDATES numbered reported updates, pipelined; `acknowledged` gets each one PUBACKed."""
    device_id = client.identity.device_id
    infos = []
    for n in range(1, UPDATES + 1):
        body = {"state": {"reported": {"sequence": n}}, "clientToken": f"{device_id}-{n}"}
        infos.append((n, client.client.publish(update_topic(device_id), orjson.dumps(body), qos=1)))
        time.sleep(PUBLISH_INTERVAL)
    for n, info in infos:
        info.wait_for_publish(30)
        if info.is_published():  # the broker's PUBACK: it accepted this update
            acknowledged.append(n)


def accepted_tokens(client: DeviceClient, expected: set[str], timeout: float) -> set[str]:
    """The clientTokens of the update/accepted replies received, until all `expected` came."""
    tokens: set[str] = set()
    deadline = time.monotonic() + timeout
    while not expected <= tokens and (left := deadline - time.monotonic()) > 0:
        try:
            message = client.messages.get(timeout=left)
        except queue.Empty:
            break
        if message.topic == accepted_topic(client.identity.device_id):
            tokens.add(orjson.loads(message.payload)["clientToken"])
    return tokens


def activity(private_postgres) -> str:
    """What each session of the cluster is doing (why the bridge is stuck, when it is)."""
    try:
        with private_postgres.connect("postgres") as conn:
            rows = conn.execute(
                "SELECT pid, state, wait_event_type, wait_event, left(query, 200) "
                "FROM pg_stat_activity WHERE backend_type = 'client backend'"
            ).fetchall()
    except Exception as exc:  # a diagnostic: say why there is none
        return f"\npg_stat_activity unavailable: {exc}\n"
    return "\npg_stat_activity:\n" + "\n".join(map(str, rows)) + "\n"


def test_bridge_recovers_from_postgres_restarts_without_losing_acknowledged_updates(
    private_postgres, devices, bridge_process, capsys
):
    database = Database(private_postgres)
    bridge_process.start()
    acknowledged = {device_id: [] for device_id in devices}
    publishers = [
        threading.Thread(target=publish_sequence, args=(client, acknowledged[device_id]))
        for device_id, client in devices.items()
    ]
    for thread in publishers:
        thread.start()
    recoveries = []
    try:
        for mode, share in RESTARTS:
            if share is not None:
                threshold = int(share * DEVICES * UPDATES)
                assert wait_until(lambda t=threshold: (database.applied() or 0) >= t, 60), (
                    bridge_process.log()
                )
            private_postgres.restart(mode, DOWN_FOR)  # devices keep publishing meanwhile
            back_at, applied_at_start = time.monotonic(), database.applied() or 0
            # Recovered: the bridge commits again (new versions) on the restarted cluster.
            recovered = wait_until(
                lambda a=applied_at_start: (database.applied() or 0) > a, RECOVERY_LIMIT
            )
            assert recovered, (
                f"no update applied within {RECOVERY_LIMIT} s of the {mode} restart\n"
                + bridge_process.log()
                + activity(private_postgres)
                + private_postgres.log()
            )
            recoveries.append((mode, time.monotonic() - back_at))
            assert bridge_process.process.poll() is None, bridge_process.log()
    finally:
        for thread in publishers:
            thread.join(60)

    # Every update was PUBACKed by the broker: none may be lost or applied twice.
    assert all(numbers == list(range(1, UPDATES + 1)) for numbers in acknowledged.values())
    total = DEVICES * UPDATES
    assert wait_until(lambda: database.applied() == total, 60), (
        f"{database.applied()} of {total} updates applied\n" + bridge_process.log()
    )
    drained_at = time.monotonic()
    time.sleep(0.5)  # a late redelivery applied again would show up as an extra version now
    for device_id in devices:
        tokens = [f"{device_id}-{n}" for n in range(1, UPDATES + 1)]
        assert database.history(device_id) == list(zip(range(1, UPDATES + 1), tokens, strict=True))
        assert database.shadow(device_id) == (UPDATES, {"sequence": UPDATES})

    # The outbox publisher reconnected too: every accepted reply reached its device.
    assert wait_until(lambda: database.outbox_size() == 0, 30), bridge_process.log()
    for device_id, client in devices.items():
        expected = {f"{device_id}-{n}" for n in range(1, UPDATES + 1)}
        received = accepted_tokens(client, expected, timeout=10)
        assert expected <= received, f"{device_id}: {len(expected - received)} replies missing"

    # And the bridge still serves: a fresh update round-trips.
    device_id, client = next(iter(devices.items()))
    body = {"state": {"reported": {"sequence": "after"}}, "clientToken": "after-restarts"}
    client.client.publish(update_topic(device_id), orjson.dumps(body), qos=1)
    reply = {}
    while reply.get("clientToken") != "after-restarts":  # skips late duplicates of old replies
        reply = orjson.loads(client.expect(accepted_topic(device_id), timeout=10).payload)
    assert reply["version"] == UPDATES + 1
    assert bridge_process.process.poll() is None, bridge_process.log()

    with capsys.disabled():
        for mode, seconds in recoveries:
            print(f"\n  bridge committing again {seconds:.2f} s after the {mode} restart", end="")
        print(f"\n  backlog applied {drained_at - back_at:.2f} s after the last restart")
