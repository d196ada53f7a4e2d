"""The device list's CSV export as the web server (ASGI) serves it: the rows go out a block at a
time while the database cursor is read, not gathered whole first (Django reads a plain iterator
whole under ASGI, and warns), and every device arrives."""

import asyncio
import csv
import io
import warnings

import pytest
from django.test import Client

from devices import csv_export
from tests.asgi_helpers import Download
from tests.conftest import make_device, make_user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_the_export_streams_under_asgi_block_by_block(monkeypatch):
    monkeypatch.setattr(csv_export, "CHUNK", 2)
    names = {make_device(device_name=f"meter-{n}").device_name for n in range(5)}
    browser = Client()
    browser.force_login(make_user("otto", "Fleet operator", is_staff=True))
    cookie = f"sessionid={browser.cookies['sessionid'].value}".encode()

    async def export():
        go_on = asyncio.Event()
        download = Download("/admin/devices/device/export.csv", go_on, ((b"cookie", cookie),))
        task = asyncio.create_task(download.run())
        await asyncio.wait_for(download.first_chunk.wait(), 30)
        first = download.body
        go_on.set()
        await asyncio.wait_for(task, 30)
        return first, download

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first, download = asyncio.run(export())

    assert download.status == 200
    assert first.decode().startswith("device_id,device_name")
    rows = list(csv.DictReader(io.StringIO(download.body.decode())))
    assert {row["device_name"] for row in rows} == names
    assert not [w for w in caught if "consume synchronous iterators" in str(w.message)]
