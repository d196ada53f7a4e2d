"""The web server is ASGI: each request's view runs in a thread of its own. A database connection
kept for reuse there stays open with its thread, so a busy web process used to hold PostgreSQL's
connections until the server refused new ones ("too many clients already") and firmware
downloads failed with 500 — found by the soak (docs/soak.md). Requests must give theirs back."""

import asyncio
import secrets
import time

import pytest
from asgiref.testing import ApplicationCommunicator
from django.db import connection

from fleetportal.asgi import application

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

REQUESTS = 30


def open_connections() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


async def get(path: str, client: str) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": (client, 40000),
        "server": ("localhost", 80),
    }
    communicator = ApplicationCommunicator(application, scope)
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(10)
    while (await communicator.receive_output(10)).get("more_body"):
        pass
    await communicator.wait(10)
    return start["status"]


def test_web_requests_give_their_database_connections_back():
    before = open_connections()
    network = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}"  # /healthz limits by address

    async def many():
        return await asyncio.gather(*(get("/healthz", f"{network}.{n}") for n in range(REQUESTS)))

    statuses = asyncio.run(many())
    # Every request answered (200, or 503 with no broker here: the database was asked either way).
    assert len(statuses) == REQUESTS and {200, 503} & set(statuses), statuses
    # A closed connection's server process takes a moment to leave pg_stat_activity.
    deadline = time.monotonic() + 10
    while open_connections() - before > 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert open_connections() - before <= 2, "requests left their database connections open"
