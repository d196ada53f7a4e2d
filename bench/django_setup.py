"""Django for a benchmark script, pointed at its scratch database.

Each script starts with

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.django_setup import setup
    setup("fleetportal_bench_jobs")

before it imports anything of the portal. BENCH_DATABASE_URL overrides the database
(bench/run_all.py gives every script its own). A throwaway secret key and WARNING logs are the
defaults, so the tables are not drowned in the portal's progress lines.
"""

import os

import django
from django.apps import apps

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/"


def database_url(default_database: str) -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_SERVER + default_database)


def setup(default_database: str) -> None:
    """Set Django up against BENCH_DATABASE_URL, or `default_database` on the local server.
    A second call (a script importing another bench module that sets up too) changes nothing."""
    if apps.ready:
        return
    os.environ.setdefault("FLEETPORTAL_SECRET_KEY", "bench-only-not-secret")
    os.environ.setdefault("FLEETPORTAL_LOG_LEVEL", "WARNING")
    os.environ["DATABASE_URL"] = database_url(default_database)
    os.environ["DJANGO_SETTINGS_MODULE"] = "fleetportal.settings"
    django.setup()


def empty_device_tables() -> None:
    """Empty the devices, their credentials, shadows, events and outbox: only in a database
    whose name says it is a bench's."""
    from django.db import connection

    name = connection.settings_dict["NAME"]
    if "bench" not in name:
        raise SystemExit(f"refusing to empty {name}: not a bench database")
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE shadows_shadowhistory, shadows_shadow, devices_deviceevent, "
            "devices_devicecredential, devices_device, fleetportal_outboxmessage CASCADE"
        )
