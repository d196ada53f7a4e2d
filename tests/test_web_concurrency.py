"""One web process lets at most WEB_CONCURRENCY requests into Django's views at once; the rest
wait their turn up to WEB_QUEUE_SECONDS, then get 503 with Retry-After. The soak found the web
process unbounded: 1,800 devices asking for their firmware in one second grew it to hundreds of
threads, and 23 downloads failed with 500 "too many clients already" (docs/soak.md).

Every request here goes through the ASGI application daphne serves, against the real PostgreSQL
and Redis; the bound is set low so a few requests fill it."""

import asyncio
import gc
import json
import threading
import time
from contextlib import asynccontextmanager

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.urls import include, path
from rest_framework.authtoken.models import Token

from devices import csv_export
from devices.models import DeviceGroup
from firmware import downloads
from tests.asgi_helpers import Download, open_connections
from tests.conftest import make_device, make_user
from tests.firmware.catalog_helpers import add, firmware_env, image  # noqa: F401 - a fixture

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

DEVICES = "/api/v1/devices/"
EXPORT = "/admin/devices/device/export.csv"
DATA = image(900_000)  # four chunks


@pytest.fixture
def bound(settings):
    """The bound the tests fill: two requests in the views, a second's wait."""
    settings.WEB_CONCURRENCY = 2
    settings.WEB_QUEUE_SECONDS = 1
    return settings


@pytest.fixture
def token():
    return Token.objects.create(user=make_user("ian", "Fleet operator", is_staff=True)).key


@pytest.fixture
def operator_cookie():
    """A console session of an operator, as the browser sends it."""
    browser = Client()
    browser.force_login(make_user("otto", "Fleet operator", is_staff=True))
    return (b"cookie", f"sessionid={browser.cookies['sessionid'].value}".encode())


def api(path: str, token: str, kind: type[Download] = Download, **options) -> Download:
    return kind(path, headers=((b"authorization", f"Token {token}".encode()),), **options)


async def answered(request: Download, within: float = 10) -> Download:
    await asyncio.wait_for(request.run(), within)
    return request


async def mid_stream(requests: list[Download]) -> list[asyncio.Task]:
    """Start the requests and return once each has its first chunk (its answer has started)."""
    tasks = [asyncio.create_task(r.run()) for r in requests]
    await asyncio.wait_for(asyncio.gather(*(r.first_chunk.wait() for r in requests)), 10)
    return tasks


@asynccontextmanager
async def export_mid_stream(cookie: tuple[bytes, bytes]):
    """A CSV export stopped after its first block, as a slow browser reads it, until the block
    ends. It reads the database as it streams, so it keeps its slot all that time."""
    go_on = asyncio.Event()
    export = Download(EXPORT, go_on, (cookie,))
    (streaming,) = await mid_stream([export])
    try:
        yield export
    finally:
        go_on.set()
        await asyncio.wait_for(streaming, 10)


class MostConnections:
    """The most database connections open at once while the block runs, beyond those open
    before it (pg_stat_activity, sampled in a thread of its own)."""

    def __init__(self):
        self.most, self._stop, self._started = 0, threading.Event(), threading.Event()
        self._sampler = threading.Thread(target=self._sample)

    def __enter__(self) -> "MostConnections":
        self._sampler.start()
        self._started.wait()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._sampler.join()

    def _sample(self) -> None:
        try:
            before = open_connections()  # counted from this thread, as the samples are
            self._started.set()
            while not self._stop.is_set():
                self.most = max(self.most, open_connections() - before)
                time.sleep(0.002)
        finally:
            self._started.set()
            connection.close()


class SlowBrowser(Download):
    """Reads the answer a block at a time, a tenth of a second apart."""

    async def send(self, message: dict) -> None:
        await super().send(message)
        if message["type"] == "http.response.body":
            await asyncio.sleep(0.1)


def test_many_concurrent_requests_hold_no_more_connections_than_the_bound(
    bound, operator_cookie, monkeypatch
):
    # Exports keep their connection while they stream: without the bound, ten exports to slow
    # browsers hold ten connections.
    bound.WEB_QUEUE_SECONDS = 10
    bound.RATE_LIMITS = {**bound.RATE_LIMITS, "device-export-user": (0, 60, 0)}
    monkeypatch.setattr(csv_export, "CHUNK", 2)
    for n in range(6):
        make_device(f"meter-{n}")

    async def many():
        exports = [SlowBrowser(EXPORT, None, (operator_cookie,)) for _ in range(10)]
        return await asyncio.gather(*(answered(export, 30) for export in exports))

    with MostConnections() as seen:
        done = asyncio.run(many())

    assert [export.status for export in done] == [200] * 10
    assert all(export.body.decode().count("\n") == 7 for export in done)  # header + 6 rows
    # One more than the bound: a closed connection's server process takes a moment to leave
    # pg_stat_activity while the next request opens its own.
    assert 1 <= seen.most <= bound.WEB_CONCURRENCY + 1, seen.most


def test_a_request_waiting_past_the_limit_gets_503_with_retry_after(
    bound, token, operator_cookie, monkeypatch
):
    # An export reads the database as it streams: it keeps its slot until its last byte.
    bound.WEB_CONCURRENCY = 1
    monkeypatch.setattr(csv_export, "CHUNK", 2)
    for n in range(5):
        make_device(f"meter-{n}")

    async def run():
        async with export_mid_stream(operator_cookie) as export:
            started = time.monotonic()
            waited = await answered(api(DEVICES, token))
            waited_for = time.monotonic() - started
        return export, waited, waited_for, await answered(api(DEVICES, token))

    export, waited, waited_for, after = asyncio.run(run())

    assert waited.status == 503
    assert 1 <= int(waited.response_headers["retry-after"]) <= 10
    assert waited.response_headers["content-type"] == "application/json"
    answer = json.loads(waited.body)
    assert answer["code"] == "busy"
    assert answer["retry_after"] == int(waited.response_headers["retry-after"])
    assert 1 <= waited_for < 5  # it waited its turn, WEB_QUEUE_SECONDS, then no longer
    assert export.status == 200 and export.body.decode().count("\n") == 6  # header + 5 rows
    assert after.status == 200  # the export's slot is free again


@pytest.mark.usefixtures("firmware_env")
def test_downloads_streaming_to_slow_devices_hold_no_slot(bound, token):
    firmware = add("4.0.0", DATA)
    url = downloads.signed_url(firmware)

    async def run():
        go_on = asyncio.Event()
        slow = [Download(url, go_on) for _ in range(2 * bound.WEB_CONCURRENCY)]
        streaming = await mid_stream(slow)  # twice as many as there are slots
        meanwhile = await answered(api(DEVICES, token), 5)
        go_on.set()
        await asyncio.wait_for(asyncio.gather(*streaming), 10)
        return slow, meanwhile

    slow, meanwhile = asyncio.run(run())

    assert meanwhile.status == 200
    assert [d.status for d in slow] == [200] * 4
    assert all(d.body == DATA for d in slow)


def test_a_request_that_fails_frees_its_slot(bound, token):
    bound.WEB_CONCURRENCY = 1

    class BrokenConnection(Download):
        async def send(self, message: dict) -> None:
            raise ConnectionResetError("the server could not write the answer")

    async def run():
        with pytest.raises(ConnectionResetError):
            await answered(BrokenConnection("/admin/login/"))
        return await answered(api(DEVICES, token))

    assert asyncio.run(run()).status == 200


def test_a_client_hanging_up_mid_answer_frees_its_slot(bound, token, operator_cookie, monkeypatch):
    bound.WEB_CONCURRENCY = 1
    monkeypatch.setattr(csv_export, "CHUNK", 2)
    for n in range(5):
        make_device(f"meter-{n}")

    async def run():
        leaving = await answered(Download(EXPORT, None, (operator_cookie,), hang_up=True))
        return leaving, await answered(api(DEVICES, token))

    leaving, after = asyncio.run(run())

    assert leaving.status == 200 and leaving.first_chunk.is_set()
    assert after.status == 200


def new_group(
    name: str, token: str, leaves: asyncio.Event | None = None, kind: type[Download] = Download
) -> Download:
    """POST /api/v1/groups/ creating the group `name`."""
    body = json.dumps({"name": name}).encode()
    request = api("/api/v1/groups/", token, kind, method="POST", body=body, leaves=leaves)
    request.headers += [
        (b"content-type", b"application/json"),
        (b"content-length", b"%d" % len(body)),
    ]
    return request


def test_a_client_that_gives_up_while_waiting_leaves_the_queue_at_once(
    bound, token, operator_cookie
):
    bound.WEB_CONCURRENCY, bound.WEB_QUEUE_SECONDS = 1, 10

    async def run():
        gives_up = asyncio.Event()
        async with export_mid_stream(operator_cookie):
            waiting = new_group("given-up", token, gives_up)
            queued = asyncio.create_task(waiting.run())
            await asyncio.sleep(0.3)
            gives_up.set()
            # It ends while the export still holds the slot, not when its turn would come.
            await asyncio.wait_for(queued, 1)
        return waiting, await answered(new_group("kept", token))

    waiting, kept = asyncio.run(run())

    assert waiting.status == 0  # no answer to a client that left
    assert not DeviceGroup.objects.filter(name="given-up").exists()
    assert kept.status == 201  # the same request from a client that stays is served
    assert DeviceGroup.objects.filter(name="kept").exists()


def test_health_checks_answer_while_the_views_are_full(bound, operator_cookie):
    bound.WEB_CONCURRENCY = 1

    async def run():
        async with export_mid_stream(operator_cookie):
            started = time.monotonic()
            health = await answered(Download("/healthz", client="10.77.0.1"))
            return health, time.monotonic() - started

    health, took = asyncio.run(run())

    # 200, or 503 naming the broker (none runs here): the health check's own answer, not "busy".
    assert health.status in (200, 503)
    assert "checks" in json.loads(health.body)
    assert took < bound.WEB_QUEUE_SECONDS


def test_a_failed_read_while_waiting_leaves_the_queue_and_reaches_django(
    bound, token, operator_cookie, caplog
):
    bound.WEB_CONCURRENCY, bound.WEB_QUEUE_SECONDS = 1, 10

    class LostClient(Download):
        """The server fails to read what follows the body (as a broken connection might)."""

        async def receive(self) -> dict:
            if not self.asked:
                return await super().receive()
            await asyncio.sleep(0.2)
            raise ConnectionResetError("the server lost the client")

    async def run():
        async with export_mid_stream(operator_cookie):
            started = time.monotonic()
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(new_group("lost", token, kind=LostClient).run(), 5)
            return time.monotonic() - started

    took = asyncio.run(run())
    gc.collect()

    assert took < 2  # not WEB_QUEUE_SECONDS: it left the queue when the read failed
    assert not DeviceGroup.objects.filter(name="lost").exists()
    assert "never retrieved" not in caplog.text


class Held:
    """A view that stays in its thread, with its database connection, until the test lets it
    return (the URL configuration below: /held/ beside the portal's own URLs)."""

    started = threading.Event()
    may_return = threading.Event()

    @classmethod
    def view(cls, request):
        DeviceGroup.objects.exists()  # its connection is open, as any view's
        cls.started.set()
        cls.may_return.wait(10)
        return HttpResponse("done")


urlpatterns = [path("held/", Held.view), path("", include("fleetportal.urls"))]


@pytest.fixture
def held_view(settings):
    settings.ROOT_URLCONF = __name__
    Held.started.clear()
    Held.may_return.clear()
    yield
    Held.may_return.set()


@pytest.mark.usefixtures("held_view")
@pytest.mark.parametrize("client_left", [True, False], ids=["client-gone", "client-there"])
def test_a_request_the_server_gives_up_on_keeps_its_slot_until_its_view_returns(
    bound, token, client_left
):
    # Daphne cancels the application application_close_timeout after the client left (or all of
    # them as it stops), while the view's thread still runs and holds its connection.
    bound.WEB_CONCURRENCY = 1

    async def run():
        leaves = asyncio.Event()
        served = asyncio.create_task(Download("/held/", leaves=leaves).run())
        assert await asyncio.to_thread(Held.started.wait, 10)
        if client_left:
            leaves.set()
            await asyncio.sleep(0.1)  # Django has given up the answer; it waits for the view
        served.cancel()
        await asyncio.wait({served}, timeout=5)
        while_in_view = await answered(api(DEVICES, token))
        Held.may_return.set()
        return served, while_in_view, await answered(api(DEVICES, token))

    served, while_in_view, after = asyncio.run(run())

    assert while_in_view.status == 503  # the slot stayed taken while the view ran
    assert after.status == 200  # and came back when it returned
    assert served.cancelled()  # the server's cancel still ends its application at once
