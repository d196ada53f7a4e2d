"""/metrics: who may read it (a bearer token, or this machine without a proxy), and what it
says — the bridge's counters and histograms pushed by a real batch hook, the telemetry part's
Redis counters, the outbox, Celery's queue, the fleet's stored counts; a source that fails is
reported, not a 500. /healthz: 200 with every check, 503 naming the one that failed."""

import re

import pytest
import redis
from django.conf import settings as django_settings
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from devices.choices import DeviceStatus
from fleetportal import topics
from fleetportal.bridge import router
from fleetportal.models import OutboxMessage
from monitoring.summary import bridge_metrics, services
from monitoring.summary.bridge_metrics import BatchCounters
from tests.bridge.test_router import Recorder
from tests.conftest import make_device
from tests.firmware.rollouts.helpers import fleet
from tests.mqtt.clients import make_identity

pytestmark = pytest.mark.django_db

TELEMETRY_KEYS = [
    "fp:metrics:telemetry_messages",
    "fp:metrics:telemetry_points",
    "fp:metrics:telemetry_dropped",
    "fp:telemetry:dropped",
    bridge_metrics.KEY,
]


@pytest.fixture
def store():
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    client.delete(*TELEMETRY_KEYS)
    yield client
    client.delete(*TELEMETRY_KEYS)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client=None, **headers) -> dict:
    answer = (client or Client()).get("/metrics", **headers)
    assert answer.status_code == 200, answer.content
    assert answer["Content-Type"].startswith("text/plain")
    return samples(answer.content.decode())


def test_without_a_token_only_this_machine_reads_it_and_not_through_a_proxy(store):
    assert Client().get("/metrics").status_code == 200  # the test client is 127.0.0.1
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 401
    forwarded = Client().get("/metrics", HTTP_X_FORWARDED_FOR="203.0.113.9")
    assert forwarded.status_code == 401


def test_with_a_token_everyone_needs_it(settings, store):
    settings.METRICS_TOKEN = "s3cret-token"
    assert Client().get("/metrics").status_code == 401
    answer = Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong")
    assert answer.status_code == 401 and answer["WWW-Authenticate"].startswith("Bearer")
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Token s3cret-token").status_code == 401
    remote = Client(REMOTE_ADDR="10.1.2.3")
    scrape(remote, HTTP_AUTHORIZATION="Bearer s3cret-token")
    assert "s3cret" not in Client().get("/metrics", HTTP_AUTHORIZATION="Bearer x").content.decode()


def test_hostile_headers_are_refused_not_a_500(settings, store):
    settings.METRICS_TOKEN = "s3cret-token"
    for value in ("Bearer \x00", "Bearer " + "x" * 10_000, "Bearer", "\u00e9\u00e9"):
        assert Client().get("/metrics", HTTP_AUTHORIZATION=value).status_code == 401


def test_it_reports_the_bridge_telemetry_outbox_queue_and_fleet(settings, store):
    settings.METRICS_PUSH_MS = 0
    counters = BatchCounters()
    for size in (3, 150):  # two batches through the hooks the bridge calls
        counters.begin([object()] * size)
        counters.flush()
        counters.end()
    store.set("fp:metrics:telemetry_messages", 40)
    store.set("fp:metrics:telemetry_points", 200)
    store.set("fp:metrics:telemetry_dropped", 7)
    store.hset("fp:telemetry:dropped", mapping={f"dev-{n}": n for n in range(1, 13)})
    # Tasks other tests queued with no worker to take them are not this test's.
    store.delete(settings.CELERY_TASK_DEFAULT_QUEUE)
    store.rpush(settings.CELERY_TASK_DEFAULT_QUEUE, "task-a", "task-b")
    OutboxMessage.objects.create(topic="devices/x/y", payload=b"{}", device_id="x")
    fleet(4)
    services.refresh()
    try:
        got = scrape()
    finally:
        store.delete(settings.CELERY_TASK_DEFAULT_QUEUE)

    assert got[("fleetportal_bridge_messages_total", ())] == 153
    assert got[("fleetportal_bridge_batches_total", ())] == 2
    assert got[("fleetportal_bridge_batch_size_bucket", (("le", "5.0"),))] == 1
    assert got[("fleetportal_bridge_batch_size_bucket", (("le", "200.0"),))] == 2
    assert got[("fleetportal_bridge_batch_size_count", ())] == 2
    assert got[("fleetportal_bridge_batch_size_sum", ())] == 153
    assert got[("fleetportal_bridge_batch_seconds_count", ())] == 2
    assert got[("fleetportal_telemetry_messages_total", ())] == 40
    assert got[("fleetportal_telemetry_points_total", ())] == 200
    assert got[("fleetportal_telemetry_dropped_total", ())] == 7
    assert got[("fleetportal_telemetry_dropping_devices", ())] == 12
    top = {k[1][0][1]: v for k, v in got.items() if k[0] == "fleetportal_telemetry_dropped_top"}
    assert top == {f"dev-{n}": n for n in range(12, 2, -1)}  # the 10 with most, no more
    assert got[("fleetportal_celery_queue_length", (("queue", "celery"),))] == 2
    assert got[("fleetportal_outbox_depth", ())] == 1
    assert got[("fleetportal_outbox_oldest_age_seconds", ())] >= 0
    assert got[("fleetportal_devices_presence", (("presence", "never_connected"),))] == 4
    assert got[("fleetportal_devices", (("status", "active"),))] == 4
    assert got[("fleetportal_alerts_open", (("severity", "critical"),))] == 0
    assert all(v == 1 for k, v in got.items() if k[0] == "fleetportal_metrics_source_up")


def test_redis_away_is_a_source_down_not_a_500(settings, store):
    from monitoring.summary import metrics

    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    metrics._redis_for.cache_clear()
    try:
        got = scrape()
    finally:
        metrics._redis_for.cache_clear()
    up = {k[1][0][1]: v for k, v in got.items() if k[0] == "fleetportal_metrics_source_up"}
    assert up == {"bridge": 0, "telemetry": 0, "celery": 0, "outbox": 1, "fleet": 1, "aws": 1}


def test_a_bridge_push_that_fails_keeps_the_figures_for_the_next(settings, store):
    settings.METRICS_PUSH_MS = 0
    working_redis = settings.REDIS_URL
    counters = BatchCounters()
    try:
        settings.REDIS_URL = "redis://127.0.0.1:1/0"
        bridge_metrics._redis.cache_clear()
        counters.begin([object()] * 4)
        counters.end()  # the push fails, quietly: the batch is not disturbed
        settings.REDIS_URL = working_redis
        bridge_metrics._redis.cache_clear()
        counters.begin([object()] * 6)
        counters.end()
    finally:
        bridge_metrics._redis.cache_clear()
    assert int(store.hget(bridge_metrics.KEY, "messages_total")) == 10
    assert int(store.hget(bridge_metrics.KEY, "batches_total")) == 2


def test_an_end_without_its_begin_counts_nothing(settings, store):
    settings.METRICS_PUSH_MS = 0
    counters = BatchCounters()
    counters.begin([object()] * 3)
    counters.end()
    counters.end()  # another app's begin raised before ours: the runner still ends the batch
    assert int(store.hget(bridge_metrics.KEY, "batches_total")) == 1


def test_healthz_is_200_when_everything_answers(broker):
    answer = Client().get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "ok",
        "checks": {"database": "ok", "redis": "ok", "broker": "ok"},
    }


def test_healthz_is_503_naming_what_failed_without_saying_where(settings, broker):
    settings.REDIS_URL = "redis://:hunter2@127.0.0.1:1/0"
    answer = Client().get("/healthz")
    assert answer.status_code == 503
    body = answer.json()
    assert body["failed"] == ["redis"]
    assert body["checks"] == {"database": "ok", "redis": "unreachable", "broker": "ok"}
    assert not re.search(r"hunter2|127\.0\.0\.1|:1\b", answer.content.decode())


def test_healthz_without_a_broker_is_503(settings):
    settings.BROKER_BACKEND_PORT = 1
    answer = Client().get("/healthz")
    assert answer.status_code == 503 and answer.json()["failed"] == ["broker"]


def test_both_are_rate_limited_per_address(settings, store):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "monitoring-address": (2, 60, 0)}
    client = Client()
    assert [client.get("/metrics").status_code for _ in range(2)] == [200, 200]
    limited = client.get("/healthz")
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert Client(REMOTE_ADDR="10.9.9.9").get("/healthz").status_code != 429


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_bridge_counts_its_batches_for_metrics(
    settings, store, broker, device_client, request
):
    """The hooks are wired (monitoring.summary.wiring): a device's messages through the real
    bridge show in /metrics."""
    settings.METRICS_PUSH_MS = 0
    make_device("fan-1", status=DeviceStatus.ACTIVE)
    heard = Recorder()
    router.subscribe("device:telemetry", heard, topics.device_filter("telemetry"))
    request.addfinalizer(lambda: router.unsubscribe("device:telemetry", heard))
    bridge = request.getfixturevalue("bridge")  # started after the subscription
    client = device_client(make_identity(broker, "fan-1"))
    for _ in range(3):
        client.publish("devices/fan-1/telemetry", b"{}")

    assert bridge.wait_until(lambda: len(heard.topics) == 3, timeout=10)
    # The three, and the broker's own log lines about the connection (presence, last_ip).
    assert bridge.wait_until(
        lambda: scrape().get(("fleetportal_bridge_messages_total", ())) >= 3, timeout=10
    )
    assert scrape()[("fleetportal_bridge_batch_seconds_count", ())] >= 1
