"""Requests through the ASGI application itself (what daphne serves), in the test's process."""

import asyncio

from django.db import connection

from fleetportal.asgi import application


def open_connections() -> int:
    """Connections to the test database other than this thread's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


class Download:
    """One request through the ASGI application (a GET unless `method` and `body` say
    otherwise); with `go_on`, it stops after its first chunk until that is set, like a device on
    a slow link; with `hang_up`, it disconnects after its first chunk, like a device that
    rebooted mid-download; with `leaves`, it disconnects once that is set, answered or not."""

    def __init__(
        self,
        url: str,
        go_on: asyncio.Event | None = None,
        headers: tuple = (),
        client: str = "10.9.8.7",
        hang_up: bool = False,
        *,
        method: str = "GET",
        body: bytes = b"",
        leaves: asyncio.Event | None = None,
    ):
        if "://" in url:
            url = "/" + url.split("://", 1)[1].partition("/")[2]
        self.path, _, self.query = url.partition("?")
        self.headers = [(b"host", b"localhost"), *headers]
        self.go_on, self.first_chunk = go_on, asyncio.Event()
        self.status, self.body, self.response_headers = 0, b"", {}
        self.client, self.hang_up, self.leaves = client, hang_up, leaves
        self.method, self.request_body, self.asked = method, body, False

    async def run(self) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode(),
            "query_string": self.query.encode(),
            "headers": self.headers,
            "client": (self.client, 40000),
            "server": ("localhost", 80),
        }
        await application(scope, self.receive, self.send)

    async def receive(self) -> dict:
        if not self.asked:
            self.asked = True
            return {"type": "http.request", "body": self.request_body}
        if self.hang_up:
            await self.first_chunk.wait()
            return {"type": "http.disconnect"}
        if self.leaves is not None:
            await self.leaves.wait()
            return {"type": "http.disconnect"}
        await asyncio.Event().wait()  # the device never hangs up

    async def send(self, message: dict) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.response_headers = {
                name.decode().lower(): value.decode() for name, value in message["headers"]
            }
            return
        self.body += message.get("body", b"")
        if not self.first_chunk.is_set():
            self.first_chunk.set()
            if self.go_on is not None:
                await self.go_on.wait()
