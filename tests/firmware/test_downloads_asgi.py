"""Firmware downloads as the web server (ASGI) serves them: many devices downloading at once hold
no database connection while the bytes go out, the image is sent a chunk at a time (never read
whole into memory first), and a rollout's download slot is freed when the answer ends. The soak
found downloads holding one connection each: a wave of 200 devices answered 500 "too many
clients already" (docs/soak.md)."""

import asyncio
import time
import uuid
import warnings

import pytest
from asgiref.sync import sync_to_async
from django.db import connection

from firmware import downloads
from firmware.models import Job
from firmware.rollouts import spread
from firmware.rollouts.models import Rollout, Wave
from tests.asgi_helpers import Download, open_connections
from tests.firmware.catalog_helpers import add, firmware_env, image  # noqa: F401 - a fixture

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.usefixtures("firmware_env"),
]

DATA = image(900_000)  # four chunks
AT_ONCE = 8


def downloads_in_flight(urls: list[str]) -> tuple[int, list[Download]]:
    """Start every download, count the database connections while each has its first chunk and
    waits, then let them finish."""
    before = open_connections()

    async def run():
        go_on = asyncio.Event()
        started = [Download(url, go_on) for url in urls]
        tasks = [asyncio.create_task(d.run()) for d in started]
        await asyncio.wait_for(asyncio.gather(*(d.first_chunk.wait() for d in started)), 30)
        held = await sync_to_async(settled_connections, thread_sensitive=False)(before)
        go_on.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        return held, started

    return asyncio.run(run())


def settled_connections(before: int) -> int:
    # A closed connection's server process takes a moment to leave pg_stat_activity.
    deadline = time.monotonic() + 5
    while (held := open_connections() - before) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    connection.close()
    return held


def test_downloads_in_flight_hold_no_database_connection_and_stream_chunk_by_chunk():
    firmware = add("3.0.0", DATA)
    url = downloads.signed_url(firmware)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        held, done = downloads_in_flight([url] * AT_ONCE)
    assert held <= 1, f"{held} database connections held by {AT_ONCE} downloads in flight"
    assert [d.status for d in done] == [200] * AT_ONCE
    assert all(d.body == DATA for d in done)
    # Django reads a plain iterator whole before sending under ASGI, and says so.
    assert not [w for w in caught if "consume synchronous iterators" in str(w.message)]


def test_a_rollout_download_frees_its_slot_when_served_by_asgi(settings):
    settings.ROLLOUT_REDIS_KEY_PREFIX = f"test:rollouts:{uuid.uuid4().hex}"
    firmware = add("3.1.0", DATA)
    rollout = Rollout.objects.create(
        rollout_id=f"r-{uuid.uuid4().hex[:8]}", firmware=firmware, download_concurrency=AT_ONCE
    )
    job = Job.objects.create(job_id=f"{rollout.rollout_id}-w1", document={}, firmware=firmware)
    Wave.objects.create(rollout=rollout, number=1, selector="count", count=0, job=job)
    urls = [downloads.signed_url(firmware, rollout=rollout) for _ in range(AT_ONCE)]

    held, done = downloads_in_flight(urls)

    assert held <= 1
    assert [d.status for d in done] == [200] * AT_ONCE
    spread.flush_bytes_served()
    rollout.refresh_from_db()
    assert rollout.bytes_served == AT_ONCE * len(DATA)
    # Every slot was given back: as many downloads as the cap can start again.
    again, _ = downloads_in_flight(urls)
    assert again <= 1


def test_a_device_hanging_up_mid_download_gives_its_rollout_slot_back(settings, monkeypatch):
    # The device leaves while the next chunk is still being read in a worker thread; the answer
    # is closed once that read ends, and closing it frees the slot.
    settings.ROLLOUT_REDIS_KEY_PREFIX = f"test:rollouts:{uuid.uuid4().hex}"
    firmware = add("3.2.0", DATA)
    rollout = Rollout.objects.create(
        rollout_id=f"r-{uuid.uuid4().hex[:8]}", firmware=firmware, download_concurrency=1
    )
    read = downloads._chunks

    def slow_chunks(*args):
        for number, chunk in enumerate(read(*args)):
            if number:
                time.sleep(0.5)
            yield chunk

    monkeypatch.setattr(downloads, "_chunks", slow_chunks)
    url = downloads.signed_url(firmware, rollout=rollout)

    async def hang_up():
        leaving = Download(url, hang_up=True)
        await asyncio.wait_for(leaving.run(), 30)
        return leaving

    leaving = asyncio.run(hang_up())
    assert leaving.status == 200 and 0 < len(leaving.body) < len(DATA)
    time.sleep(1)  # the read in flight ends
    again = asyncio.run(hang_up())  # the one slot is free again: 200, not 503
    assert again.status == 200
