"""The web server is ASGI: each request's view runs in a thread of its own. A database connection
kept for reuse there stays open with its thread, so a busy web process used to hold PostgreSQL's
connections until the server refused new ones ("too many clients already") and firmware
downloads failed with 500 — found by the soak (docs/soak.md). Requests must give theirs back."""

import asyncio
import secrets
import time

import pytest

from tests.asgi_helpers import Download, open_connections

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

REQUESTS = 30


async def get(path: str, client: str) -> int:
    request = Download(path, client=client)
    await request.run()
    return request.status


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
