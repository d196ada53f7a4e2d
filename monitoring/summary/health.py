"""GET /healthz: can this portal process reach the database, Redis and the broker?

200 {"status": "ok", "checks": {...}} or 503 naming what failed. No login (a load balancer
asks), so it says only "ok" or "unreachable" per dependency: no address, URL or error text.
Each check is bounded by TIMEOUT_SECONDS; the broker check is a TCP connect to the bridge's
backend listener (the port the bridge uses), which proves Mosquitto is accepting connections."""

import logging
import socket
from collections.abc import Callable
from functools import cache

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from monitoring.summary import access

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 1.0


def database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def redis_server() -> None:
    _redis(settings.REDIS_URL).ping()


def broker() -> None:
    address = (settings.BROKER_HOST, settings.BROKER_BACKEND_PORT)
    with socket.create_connection(address, timeout=TIMEOUT_SECONDS):
        pass


CHECKS: dict[str, Callable[[], None]] = {
    "database": database,
    "redis": redis_server,
    "broker": broker,
}


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    if limited := access.too_many(request):
        return limited
    results = {name: _run(name, check) for name, check in CHECKS.items()}
    failed = sorted(name for name, result in results.items() if result != "ok")
    body = {"status": "failing" if failed else "ok", "checks": results}
    if failed:
        body["failed"] = failed
    answer = JsonResponse(body, status=503 if failed else 200)
    answer["Cache-Control"] = "no-store"
    return answer


def _run(name: str, check: Callable[[], None]) -> str:
    try:
        check()
    except (DatabaseError, redis.RedisError, OSError) as exc:
        log.warning("healthz: %s unreachable: %s", name, exc)
        return "unreachable"
    return "ok"


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS
    )
