"""Every statement sent to PostgreSQL, Django's and those of the code's own psycopg cursors (the
bridge's batch writes bind on the server and are not in Django's query log)."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg


@contextmanager
def statements() -> Iterator[list[str]]:
    sent: list[str] = []
    execute = psycopg.Cursor.execute  # Django's cursor classes derive from it

    def recording(cursor, query, *args, **kwargs):
        sent.append(query if isinstance(query, str) else query.as_string(cursor))
        return execute(cursor, query, *args, **kwargs)

    psycopg.Cursor.execute = recording
    try:
        yield sent
    finally:
        psycopg.Cursor.execute = execute
