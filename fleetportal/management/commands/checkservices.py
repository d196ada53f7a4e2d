"""Tell, before anything starts, whether PostgreSQL and Redis answer (used by `make run`)."""

from urllib.parse import urlsplit

import psycopg
import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from fleetportal.management.commands.ensuredb import MAINTENANCE_DB, describe, server_conninfo


class Command(BaseCommand):
    help = "Check that the PostgreSQL server and Redis named in the settings are reachable."

    def handle(self, *args, **options):
        problems = [p for p in (self._postgres(), self._redis()) if p]
        if problems:
            raise CommandError("\n".join(problems))
        self.stdout.write("PostgreSQL and Redis are reachable.")

    def _postgres(self) -> str | None:
        db = settings.DATABASES["default"]
        try:
            params = server_conninfo(db)
            psycopg.connect(**params, dbname=MAINTENANCE_DB, connect_timeout=5).close()
        except psycopg.OperationalError as exc:
            return (
                f"PostgreSQL at {describe(db)} does not answer ({str(exc).strip()}). "
                "Start it, or set DATABASE_URL to a running server."
            )
        return None

    def _redis(self) -> str | None:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)
        # Host and port only: the URL may carry a password.
        url = urlsplit(settings.REDIS_URL)
        try:
            client.ping()
        except redis.RedisError as exc:
            return (
                f"Redis at {url.hostname}:{url.port or 6379} does not answer ({exc}). "
                "Start it (e.g. redis-server --daemonize yes), or set REDIS_URL."
            )
        finally:
            client.close()
        return None
