"""Helpers for the telemetry tests: messages as the bridge builds them, a bridge batch, points
written straight into the table, and a clean slate (the partitioned tables are not Django
models, so a transactional test's flush does not empty them)."""

import uuid
from datetime import datetime

import orjson
import pytest
import redis
from django.conf import settings
from django.db import connection, transaction

from fleetportal import topics
from fleetportal.bridge import router
from monitoring.telemetry import counters, ingest, partitions, tables


def telemetry(device_id: str, payload, at: datetime) -> router.InboundMessage:
    topic = topics.device_topic(device_id, "telemetry")
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return router.InboundMessage(topic, body, topics.parse(topic), received_at=at)


def run_batch(messages: list[router.InboundMessage]) -> None:
    """As the bridge runs a batch: its hooks around the dispatches, in one transaction."""
    with transaction.atomic():
        router.begin_batch(messages)
        try:
            for message in messages:
                router.dispatch(message)
            router.flush_batch()
        finally:
            router.end_batch()


def insert_points(rows, received_at: datetime | None = None) -> None:
    """(device pk, name, ts, value) rows, straight into the table."""
    partitions.ensure_days({row[2].date() for row in rows})
    with connection.cursor() as cursor:
        for device_pk, name, ts, value in rows:
            cursor.execute(
                f"INSERT INTO {tables.POINTS} (device_id, name, ts, value, received_at) "  # noqa: S608
                "VALUES (%s, %s, %s, %s, COALESCE(%s, statement_timestamp()))",
                [device_pk, name, ts, value, received_at],
            )


def stored(device_pk=None) -> list[tuple[str, datetime, float]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name, ts, value FROM {tables.POINTS} "  # noqa: S608
            "WHERE %s::uuid IS NULL OR device_id = %s ORDER BY ts, name",
            [device_pk, device_pk],
        )
        return cursor.fetchall()


def counter(name: str) -> int:
    return int(_redis().get(counters.key(name)) or 0)


def dropped_by_device() -> dict[str, int]:
    dropped = _redis().hgetall(counters.key(counters.DROPPED_BY_DEVICE))
    return {k.decode(): int(v) for k, v in dropped.items()}


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


@pytest.fixture
def clean_telemetry(monkeypatch):
    """Empty telemetry tables, and counters of this test's own (parallel workers share Redis)."""

    def clean():
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {tables.POINTS}, {tables.MINUTES}, {tables.HOURS}")
        ingest.forget()
        partitions.forget()

    namespace = f"test-telemetry:{uuid.uuid4().hex}:"
    monkeypatch.setattr(counters, "namespace", namespace)
    clean()
    yield
    clean()
    names = (counters.MESSAGES, counters.POINTS, counters.DROPPED, counters.DROPPED_BY_DEVICE)
    _redis().delete(*(namespace + name for name in names))
