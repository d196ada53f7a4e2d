"""Webhook delivery to a real local HTTP server: signed, retried with backoff, failures visible."""

import hashlib
import hmac
import socket
import time

import orjson
import pytest
from django.db import connection

from monitoring.alerts import delivery, targets
from monitoring.alerts.evaluation import evaluate
from monitoring.models import Alert, WebhookDelivery
from tests.conftest import make_device
from tests.devices.claim_helpers import CeleryWorker, running
from tests.monitoring.alert_helpers import Receiver, at, make_rule, report_battery

SECRET = "receiver-knows-this"
FAR = at(24 * 60)  # late enough for any backoff


def none(metric, window, now):
    return {}


@pytest.fixture
def webhook_settings(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True
    settings.WEBHOOK_SECRET = SECRET
    settings.ALERT_WEBHOOK_MAX_ATTEMPTS = 3
    settings.ALERT_WEBHOOK_RETRY_SECONDS = 10
    settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 2
    return settings


@pytest.fixture
def receiver():
    server = Receiver([])
    yield server
    server.stop()


def raised_delivery(url: str) -> WebhookDelivery:
    make_rule(for_seconds=0, severity="critical", webhook_url=url)
    report_battery(make_device("pump-7"), 4)
    evaluate(at(0), values=none)
    return WebhookDelivery.objects.get()


def verifies(headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does (docs/monitoring-alerts.md)."""
    timestamp = headers["X-Fleetportal-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(headers["X-Fleetportal-Signature"], "sha256=" + expected.hexdigest())


@pytest.mark.django_db
def test_a_delivery_that_fails_twice_is_retried_with_backoff_then_delivered(
    webhook_settings, receiver
):
    receiver.statuses = [500, 503]
    row = raised_delivery(receiver.url)
    assert row.status == "pending"
    assert row.next_attempt_at == at(0)

    first = delivery.attempt(row.pk, now=at(0))
    assert (first.status, first.retry_in) == ("pending", 10)
    row.refresh_from_db()
    assert (row.attempts, row.last_status_code, row.last_error) == (1, 500, "answered HTTP 500")
    # Not due yet: a second task (or the sweep) does not send it again.
    assert delivery.attempt(row.pk, now=at(0)) is None

    second = delivery.attempt(row.pk, now=FAR)
    assert (second.status, second.retry_in) == ("pending", 20)
    third = delivery.attempt(row.pk, now=FAR + (FAR - at(0)))
    assert third.status == "delivered"
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
        "delivered", 3, 200, "",
    )  # fmt: skip
    assert row.delivered_at is not None

    assert len(receiver.requests) == 3
    headers, body = receiver.requests[-1]
    assert verifies(headers, body)
    assert headers["X-Fleetportal-Delivery"] == str(row.pk)
    assert abs(int(headers["X-Fleetportal-Timestamp"]) - time.time()) < 60
    document = orjson.loads(body)
    alert = Alert.objects.get()
    assert document["event"] == "alert_raised"
    assert document["state"] == "open"
    assert document["alert"]["id"] == alert.pk
    assert document["alert"]["severity"] == "critical"
    assert document["rule"]["name"] == "low battery"
    assert document["device"] == {"id": str(alert.device_id), "device_id": "pump-7"}


@pytest.mark.django_db
def test_a_tampered_body_or_an_old_signature_does_not_verify(webhook_settings, receiver):
    row = raised_delivery(receiver.url)
    delivery.attempt(row.pk, now=at(0))
    headers, body = receiver.requests[0]
    assert verifies(headers, body)
    assert not verifies(headers, body.replace(b"critical", b"info"))
    replayed = {
        **headers,
        "X-Fleetportal-Timestamp": str(int(headers["X-Fleetportal-Timestamp"]) + 600),
    }
    assert not verifies(replayed, body)


@pytest.mark.django_db
def test_the_resolution_is_delivered_too(webhook_settings, receiver):
    row = raised_delivery(receiver.url)
    report_battery(row.alert.device, 80)
    evaluate(at(1), values=none)
    resolved = WebhookDelivery.objects.get(event="alert_resolved")
    delivery.attempt(resolved.pk, now=at(1))
    document = orjson.loads(receiver.requests[-1][1])
    assert document["event"] == "alert_resolved"
    assert document["state"] == "resolved"
    assert document["alert"]["resolved_at"].startswith("2026-03-01T12:01:00")


@pytest.mark.django_db
def test_a_permanently_failing_url_ends_failed_and_is_visible(webhook_settings, viewer_api):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    row = raised_delivery(url)
    outcomes = [delivery.attempt(row.pk, now=at(n * 60)) for n in range(3)]
    assert [o.status for o in outcomes] == ["pending", "pending", "failed"]
    assert outcomes[-1].retry_in is None
    row.refresh_from_db()
    assert row.status == "failed"
    assert row.attempts == 3
    assert row.next_attempt_at is None
    assert "refused" in row.last_error.lower()

    listed = viewer_api.get("/api/v1/webhook-deliveries/", {"status": "failed"}).json()
    [shown] = listed["results"]
    assert (shown["id"], shown["attempts"], shown["status"]) == (row.pk, 3, "failed")
    assert shown["last_error"] == row.last_error


@pytest.mark.django_db
def test_private_targets_are_refused_at_delivery_unless_allowed(webhook_settings, receiver):
    row = raised_delivery(receiver.url)
    webhook_settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    delivery.attempt(row.pk, now=at(0))
    row.refresh_from_db()
    assert "private or loopback" in row.last_error
    assert receiver.requests == []


def test_a_name_resolving_to_a_private_address_is_refused(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = False
    name = socket.gethostname()  # resolves to this machine: a private or loopback address
    with pytest.raises(targets.TargetRefused, match="resolves to a private address"):
        targets.checked_address(f"http://{name}:8080/hook")


@pytest.mark.django_db
def test_without_a_secret_nothing_is_sent_and_the_delivery_says_why(webhook_settings, receiver):
    webhook_settings.WEBHOOK_SECRET = ""
    row = raised_delivery(receiver.url)
    delivery.attempt(row.pk, now=at(0))
    row.refresh_from_db()
    assert "FLEETPORTAL_WEBHOOK_SECRET is not set" in row.last_error
    assert receiver.requests == []


@pytest.mark.django_db
def test_a_slow_receiver_times_out(webhook_settings):
    webhook_settings.ALERT_WEBHOOK_TIMEOUT_SECONDS = 1
    with socket.socket() as listener:  # accepts the connection, never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        row = raised_delivery(f"http://127.0.0.1:{listener.getsockname()[1]}/hook")
        started = time.monotonic()
        delivery.attempt(row.pk, now=at(0))
        assert time.monotonic() - started < 3
    row.refresh_from_db()
    assert row.last_error == "no answer within 1 s"


@pytest.mark.django_db
def test_lost_deliveries_are_found_by_the_sweep(webhook_settings, receiver):
    row = raised_delivery(receiver.url)
    assert delivery.lost_deliveries(now=at(0)) == []
    assert delivery.lost_deliveries(now=at(2)) == [row.pk]


@pytest.fixture
def webhook_worker(django_db_setup, django_db_blocker, pki_dir, tmp_path, worker_id):
    worker = CeleryWorker(
        connection.settings_dict["NAME"],
        pki_dir / "ca",
        tmp_path / "worker.log",
        worker_id,
        FLEETPORTAL_ALERT_WEBHOOK_ALLOW_PRIVATE="true",
        FLEETPORTAL_WEBHOOK_SECRET=SECRET,
        FLEETPORTAL_ALERT_WEBHOOK_RETRY_SECONDS="1",
        FLEETPORTAL_ALERT_WEBHOOK_MAX_ATTEMPTS="4",
    )
    yield from running(worker)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_real_celery_worker_retries_until_the_receiver_accepts(
    webhook_settings, receiver, webhook_worker
):
    receiver.statuses = [500, 502]
    row = raised_delivery(receiver.url)  # queued after the evaluation's commit
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        row.refresh_from_db()
        if row.status != "pending":
            break
        time.sleep(0.2)
    assert row.status == "delivered", webhook_worker.log()
    assert row.attempts == 3
    assert len(receiver.requests) == 3
    assert all(verifies(headers, body) for headers, body in receiver.requests)
