"""At most WEB_CONCURRENCY requests of one web process inside Django's views at once.

Django's ASGI handler runs each request's view in a thread of its own, and each such thread opens
its own PostgreSQL connection; nothing bounded how many ran at once. In the soak (docs/soak.md)
1,800 devices asked for their firmware in the same second: the web process grew to hundreds of
threads (and kept their memory), and 23 downloads failed with 500 "too many clients already".
`Bounded` sits in front of Django's HTTP application (fleetportal/asgi.py; WebSockets are not
bounded here) and lets a request in only with one of WEB_CONCURRENCY slots, first come first
served (an asyncio.Semaphore):

- A request takes its slot once its body has arrived: Django reads the whole body before any
  view, so a client sending slowly holds no slot meanwhile. It waits for one at most
  WEB_QUEUE_SECONDS, then is answered 503 with Retry-After and never reaches a view. A client
  that hangs up while it waits leaves the queue.
- The slot is given back when Django's handler returns, whatever happened (an answer sent, an
  exception, the client gone): by then the view's thread has ended (asgiref waits for it even
  when the client leaves) and the request's database connection is closed (request_finished,
  sent after the answer's last byte; not when the server itself failed to take the answer).
- Even when the server gives up on the request first: daphne cancels the application
  `application_close_timeout` (10 s) after the client left, and every one as it stops. asgiref
  waits for the view's thread through Django's own cancel on a disconnect, not through a second
  one; today (Django 5.2, asgiref 3.13) the handler still waits after daphne's, but only by way
  of internals (request_finished's receivers queue behind the view on the request's one thread;
  ThreadSensitiveContext joins that thread). The bound must not rest on them: the handler runs
  as a task of its own that the server's cancel does not reach. The application ends at once;
  the slot goes back when the handler does.
- Except for an answer that streams without the database (`streams_without_database`, which
  fleetportal.streaming calls for a firmware image once it has closed the request's connection):
  its slot is given back when the answer starts, so a download streaming for minutes to a slow
  device holds none. It still keeps one idle thread, though: the request's own executor
  (asgiref's ThreadSensitiveContext), which Django needs again to close the answer and send
  request_finished at its end. So idle threads follow the downloads in flight: a rollout's
  wave caps them with its download_concurrency, a plain job's downloads only by how many
  devices ask at once. An answer that reads the database as it streams (a CSV export, a zip of
  credentials) keeps its slot to the end, as it keeps its connection.
- Paths an app names (`separate_lane`: monitoring's /healthz and /metrics) have a few slots of
  their own: they still answer while the views are saturated, and are bounded too.
"""

import asyncio
import json
import logging
import secrets
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings

log = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]

SCOPE_KEY = "fleetportal.web_slot"
_WARN_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Lane:
    """Slots requests share: the views' (slots None: settings.WEB_CONCURRENCY) or a named few."""

    name: str
    slots: int | None = None


VIEWS = Lane("views")
_LANES: dict[str, Lane] = {}  # path -> its own lane
# A semaphore belongs to the event loop it first waits on: one set per loop (daphne runs one;
# tests run one per asyncio.run()).
_SEMAPHORES: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Lane, asyncio.Semaphore]]"
_SEMAPHORES = weakref.WeakKeyDictionary()


def separate_lane(name: str, paths: tuple[str, ...], slots: int) -> None:
    """Requests for these paths (exact, as `/healthz`) share `slots` slots of their own."""
    lane = Lane(name, slots)
    for path in paths:
        taken = _LANES.setdefault(path, lane)
        if taken != lane:
            raise ValueError(f"{path!r} is already in the lane {taken.name!r}.")


def streams_without_database(scope: Mapping[str, Any]) -> None:
    """This request's answer holds no database connection while it streams: free its slot when
    the answer starts. Called from the view's thread; read by the event loop after the view."""
    turn = scope.get(SCOPE_KEY)
    if isinstance(turn, _Turn):
        turn.streams_freely = True


class Bounded:
    """The ASGI middleware: Django's HTTP application behind the slots."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        turn = _Turn(_lane(scope), receive, send)
        handler = asyncio.ensure_future(
            self.app({**scope, SCOPE_KEY: turn}, turn.receive, turn.send)
        )
        handler.add_done_callback(lambda _: turn.end())  # the one place the slot goes back
        try:
            await asyncio.shield(handler)
        except asyncio.CancelledError:  # the server gave up: the handler goes on, slot and all
            _outliving.add(handler)
            handler.add_done_callback(_outlived)
            raise
        if turn.late:
            await _busy(scope, send)


# Handlers still running after the server cancelled their request, kept from the garbage
# collector (the event loop holds its tasks weakly) until they return.
_outliving: set[asyncio.Future[None]] = set()


def _outlived(handler: asyncio.Future[None]) -> None:
    _outliving.discard(handler)
    # Nobody awaits it any more: its failure would otherwise go unheard.
    if not handler.cancelled() and (error := handler.exception()) is not None:
        log.error("web: a request failed after the server gave up on it", exc_info=error)


class _Turn:
    """One request's turn: its wait for a slot, the slot, and the message after its body (the
    client's disconnect), read while it waits and handed to Django when Django listens."""

    def __init__(self, lane: Lane, receive: Receive, send: Send):
        self.lane, self.semaphore = lane, _semaphore(lane)
        self._receive, self._send = receive, send
        self.held = self.late = self.streams_freely = self._waited = False
        self._after_body: asyncio.Future[Message] | None = None

    async def receive(self) -> Message:
        if self._after_body is not None:  # Django listening for the disconnect
            after, self._after_body = self._after_body, None
            return await after
        message = await self._receive()
        if self._waited or message["type"] != "http.request" or message.get("more_body"):
            return message
        self._waited = True  # the body is all here: now the turn
        after_body = self._after_body = asyncio.ensure_future(self._receive())
        await self._wait(after_body)
        if _client_left(after_body):  # while it waited (or as its turn came)
            self.release()
            self._after_body = None
            # Django gets the disconnect (or the server's error) instead of the body: no view.
            return after_body.result()
        if not self.held:
            self.late = True
            _refusals.count(self.lane)
            return {"type": "http.disconnect"}  # Django stops before any view; then the 503
        return message

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start" and self.streams_freely:
            self.release()
        await self._send(message)

    async def _wait(self, after_body: asyncio.Future[Message]) -> None:
        if not self.semaphore.locked():  # a free slot, nobody queued: taken at once
            self.held = await self.semaphore.acquire()
            return
        loop = asyncio.get_running_loop()
        until = loop.time() + settings.WEB_QUEUE_SECONDS
        taking: asyncio.Future[Any] = asyncio.ensure_future(self.semaphore.acquire())
        try:
            await asyncio.wait(
                {taking, after_body},
                timeout=settings.WEB_QUEUE_SECONDS,
                return_when=asyncio.FIRST_COMPLETED,
            )
            if after_body.done() and not _client_left(after_body):
                # Not a disconnect (the ASGI spec allows none other here): kept for Django,
                # which hears it when it listens, and the wait goes on.
                await asyncio.wait({taking}, timeout=max(until - loop.time(), 0))
        finally:
            # Done: the slot is ours. Still queued: the place is given up, and a slot granted
            # in the meantime goes back as the cancelled acquire() ends (Semaphore.acquire).
            self.held = not taking.cancel()

    def release(self) -> None:
        if self.held:
            self.held = False
            self.semaphore.release()

    def end(self) -> None:
        """Django's handler returned: the slot goes back, and the client's next message with it
        unless Django took it."""
        self.release()
        after, self._after_body = self._after_body, None
        if after is not None and not after.cancel() and not after.cancelled():
            after.exception()  # retrieved: a failed read nobody listened to is not an error


def _client_left(after_body: asyncio.Future[Message]) -> bool:
    """The client's message after its body says it left (or the server could not read it)."""
    if not after_body.done():
        return False
    return after_body.exception() is not None or after_body.result()["type"] == "http.disconnect"


def _lane(scope: MutableMapping[str, Any]) -> Lane:
    path, root = scope["path"], scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return _LANES.get(path, VIEWS)


def _semaphore(lane: Lane) -> asyncio.Semaphore:
    per_loop = _SEMAPHORES.setdefault(asyncio.get_running_loop(), {})
    if lane not in per_loop:
        per_loop[lane] = asyncio.Semaphore(lane.slots or settings.WEB_CONCURRENCY)
    return per_loop[lane]


async def _busy(scope: MutableMapping[str, Any], send: Send) -> None:
    # A random wait, so the refused do not all come back in the same second.
    retry_after = 1 + secrets.randbelow(max(settings.WEB_QUEUE_SECONDS, 1))
    body = json.dumps(
        {
            "detail": "The portal is busy: every slot for a request is taken. Retry later.",
            "code": "busy",
            "retry_after": retry_after,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(retry_after).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})


class _Refusals:
    """Requests answered 503, logged at most once a minute: a storm is one line, not thousands."""

    def __init__(self) -> None:
        self.logged_at, self.refused = -_WARN_EVERY_SECONDS, 0

    def count(self, lane: Lane) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self.logged_at >= _WARN_EVERY_SECONDS:
            log.warning(
                "web: %d request(s) answered 503 since the last such line: all %d %s slots "
                "stayed taken for FLEETPORTAL_WEB_QUEUE_SECONDS (%d s)",
                self.refused,
                lane.slots or settings.WEB_CONCURRENCY,
                lane.name,
                settings.WEB_QUEUE_SECONDS,
            )
            self.logged_at, self.refused = now, 0


_refusals = _Refusals()
