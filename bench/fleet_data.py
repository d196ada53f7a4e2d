"""Loads a synthetic fleet straight into PostgreSQL for the benchmarks (one INSERT … SELECT).

The shape is what a real fleet looks like to the list pages: five device types, a handful of
firmware versions, most devices active, 1% carrying a rare metadata key, one million distinct
created_at values so keyset pagination has real positions.
"""

from django.db import connection

GROUPS = 50

DEVICES_SQL = """
INSERT INTO devices_device (
    id, device_id, device_name, device_type, manufacturer, model, serial_number,
    firmware_version, hardware_version, status, last_seen, last_ip_address,
    location, metadata, group_id, created_at, updated_at
)
SELECT
    gen_random_uuid(),
    'dev-' || lpad(i::text, 7, '0'),
    'Device ' || i,
    (ARRAY['sensor', 'gateway', 'camera', 'tracker', 'meter'])[1 + mod(i, 5)],
    (ARRAY['Acme', 'Globex', 'Initech'])[1 + mod(i, 3)],
    'model-' || mod(i, 7),
    'SN-' || lpad(mod(i * 7919, 10000000)::text, 7, '0'),
    (ARRAY['1.9.3', '1.10.0', '2.0.1', '2.1.0'])[1 + mod(i, 4)],
    'hw-' || mod(i, 3),
    CASE mod(i, 20) WHEN 0 THEN 'registered' WHEN 1 THEN 'provisioning'
         WHEN 2 THEN 'maintenance' WHEN 3 THEN 'decommissioned' ELSE 'active' END,
    now() - make_interval(secs => mod(i * 37, 172800)),
    ('10.' || mod(i / 65536, 256) || '.' || mod(i / 256, 256) || '.' || mod(i, 256))::inet,
    jsonb_build_object('lat', 52.5 + mod(i, 100) / 1000.0, 'lon', 13.4 + mod(i, 77) / 1000.0),
    CASE WHEN mod(i, 100) = 0
         THEN jsonb_build_object('site', 'site-' || mod(i, 500), 'battery_pack', 'li-ion')
         ELSE jsonb_build_object('site', 'site-' || mod(i, 500)) END,
    (ARRAY(SELECT id FROM devices_devicegroup ORDER BY name))[1 + mod(i, %(groups)s)],
    now() - make_interval(secs => %(total)s - i),
    now()
FROM generate_series(%(start)s::bigint, %(stop)s::bigint) AS i
"""


def device_count() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM devices_device")
        return cur.fetchone()[0]


def load(total: int, batch: int = 100_000, progress=print) -> None:
    """Top the table up to `total` devices, in batches so progress is visible."""
    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO devices_devicegroup"
            " (id, name, description, filters, priority, created_at, updated_at)"
            " SELECT gen_random_uuid(), 'group-' || lpad(g::text, 2, '0'), '', '{}', 0, now(),"
            " now()"
            " FROM generate_series(1, %s) g ON CONFLICT (name) DO NOTHING",
            [GROUPS],
        )
        cur.execute("SET maintenance_work_mem = '512MB'")
        start = device_count() + 1
        while start <= total:
            stop = min(start + batch - 1, total)
            cur.execute(
                DEVICES_SQL, {"start": start, "stop": stop, "total": total, "groups": GROUPS}
            )
            progress(f"  loaded {stop:,} / {total:,} devices")
            start = stop + 1
        cur.execute("VACUUM ANALYZE devices_device")


def logged_in_client(devices: int):
    """Migrate the scratch database, top the fleet up to `devices`, return a superuser's client."""
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    call_command("ensuredb")
    call_command("migrate", verbosity=0)
    if device_count() < devices:
        print(f"Loading {devices:,} devices (once; kept for later runs) …")
        load(devices)
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", password=None
    )
    client = Client()
    client.force_login(user)
    return client
