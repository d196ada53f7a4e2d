"""Create the configured PostgreSQL database if it does not exist yet (used by `make run`)."""

import psycopg
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from psycopg import errors, sql

# Every PostgreSQL server has this database; we connect to it to create ours.
MAINTENANCE_DB = "postgres"


def server_conninfo(db: dict) -> dict:
    """psycopg connection keywords for the server behind a Django DATABASES entry."""
    params = {
        "host": db.get("HOST"),
        "port": db.get("PORT"),
        "user": db.get("USER"),
        "password": db.get("PASSWORD"),
        **db.get("OPTIONS", {}),
    }
    # Empty values mean "libpq's default" (e.g. the local socket), so leave them out.
    return {key: value for key, value in params.items() if value not in (None, "")}


def describe(db: dict) -> str:
    return f"{db.get('HOST') or 'local socket'}:{db.get('PORT') or 5432}"


class Command(BaseCommand):
    help = "Create the database named in DATABASE_URL if it is missing. Safe to run repeatedly."

    def handle(self, *args, **options):
        db = settings.DATABASES["default"]
        name = db["NAME"]
        try:
            conn = psycopg.connect(**server_conninfo(db), dbname=MAINTENANCE_DB, autocommit=True)
        except psycopg.OperationalError as exc:
            raise CommandError(
                f"Cannot reach PostgreSQL at {describe(db)}: {exc}".strip()
                + "\nStart the server or point DATABASE_URL at a running one."
            ) from exc
        with conn:
            if self._exists(conn, name):
                self.stdout.write(f"Database {name!r} exists.")
                return
            try:
                # CREATE DATABASE takes no parameters, so the name is quoted as an identifier.
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except errors.DuplicateDatabase:
                self.stdout.write(f"Database {name!r} exists.")  # created by a concurrent run
                return
        self.stdout.write(self.style.SUCCESS(f"Created database {name!r}."))

    def _exists(self, conn, name: str) -> bool:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        return row is not None
