"""Long answers (firmware images, CSV exports, zips of credentials) streamed under ASGI a chunk
at a time, holding no more than they need.

Given a plain iterator, Django's ASGI handler reads the whole of it into memory before it sends a
byte, in the request's own thread, and that thread keeps its database connection until the
answer ends. A few hundred devices downloading an image at once would then hold a few hundred
images in memory and more connections than PostgreSQL allows (the soak found the second: 500s
with "too many clients already"). `for_server` hands the chunks to the server one at a time and,
for an answer that no longer needs the database, gives the connection back first — and with it
the request's slot among the web process's WEB_CONCURRENCY (fleetportal/web_concurrency.py), so
a download streaming to a slow device keeps no other request waiting.
"""

from collections.abc import Iterator

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpRequest

from fleetportal import web_concurrency

_END = object()


def for_server(request: HttpRequest, chunks: Iterator[bytes], *, reads_database: bool):
    """The chunks as the server should take them: under WSGI (and Django's test client) as they
    are, since a WSGI server pulls them one at a time; under ASGI as an async iterator of them.

    reads_database: the chunks query as they go (an export), so each is made in the request's
    own thread, whose connection stays open until the answer ends, and the request keeps its
    slot in the web process as long. Otherwise (an artifact file) the thread's connections are
    closed first (outside a transaction; a later query would open a new one), each chunk is
    read in any worker thread, and the slot is freed once the answer starts."""
    django_request = getattr(request, "_request", request)  # a DRF Request wraps Django's
    if not isinstance(django_request, ASGIRequest):
        return chunks
    if not reads_database and give_back_connections():
        web_concurrency.streams_without_database(django_request.scope)
    return _AsyncChunks(chunks, in_request_thread=reads_database)


def give_back_connections() -> bool:
    """Close this thread's connections outside a transaction; True when none is left open."""
    kept = False
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            kept = True
        else:
            connection.close()
    return not kept


class _AsyncChunks:
    """An iterator of bytes served as an async iterator: each chunk is made in a thread, so a
    slow read never blocks the event loop. close() (Django calls it when the answer ends, sent
    or abandoned) closes the chunks, which frees whatever they hold: a file, a download slot, a
    database cursor."""

    def __init__(self, chunks: Iterator[bytes], *, in_request_thread: bool):
        self.chunks = chunks
        self._next = sync_to_async(next, thread_sensitive=in_request_thread)

    def __aiter__(self) -> "_AsyncChunks":
        return self

    async def __anext__(self) -> bytes:
        chunk = await self._next(self.chunks, _END)
        if chunk is _END:
            raise StopAsyncIteration
        return chunk

    def close(self) -> None:
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()
