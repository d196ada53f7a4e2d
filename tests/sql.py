"""Every statement sent to PostgreSQL, Django's and those of the code's own psycopg cursors (the
bridge's batch writes bind on the server and are not in Django's query log)."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


@contextmanager
def statements() -> Iterator[list[str]]:
    with _recording("execute") as sent:  # Django's cursor classes derive from psycopg's
        yield sent


@contextmanager
def copies() -> Iterator[list[str]]:
    """The COPY statements sent (psycopg's copy() does not go through execute)."""
    with _recording("copy") as sent:
        yield sent


@contextmanager
def _recording(method: str) -> Iterator[list[str]]:
    sent: list[str] = []
    original = getattr(psycopg.Cursor, method)

    def recording(cursor, query, *args, **kwargs):
        sent.append(query if isinstance(query, str) else query.as_string(cursor))
        return original(cursor, query, *args, **kwargs)

    setattr(psycopg.Cursor, method, recording)
    try:
        yield sent
    finally:
        setattr(psycopg.Cursor, method, original)
