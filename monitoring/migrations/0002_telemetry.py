"""Telemetry (issue 14, part T): the points and their minute and hour rollups, partitioned by
day (raw SQL: Django cannot declare a partitioned table), the rollups' watermark, and the
partitions for today and the days ahead."""

from django.db import migrations, models

_ROLLUP_COLUMNS = """
    device_id uuid NOT NULL,
    name text NOT NULL,
    bucket timestamptz NOT NULL,
    count bigint NOT NULL,
    sum double precision NOT NULL,
    min double precision NOT NULL,
    max double precision NOT NULL,
    PRIMARY KEY (device_id, name, bucket)
"""

CREATE = [
    # device_id is the device's pk without a foreign key: a key check per row would cost the
    # COPY a lookup for every value, and devices are decommissioned, not deleted.
    # received_at defaults to the COPY's start: the rollups' watermark reads it.
    """CREATE TABLE monitoring_telemetry_point (
        device_id uuid NOT NULL,
        name text NOT NULL,
        ts timestamptz NOT NULL,
        value double precision NOT NULL,
        received_at timestamptz NOT NULL DEFAULT statement_timestamp()
    ) PARTITION BY RANGE (ts)""",
    # A device's chart and raw points (newest first), for any name.
    "CREATE INDEX monitoring_telemetry_point_device_ts ON monitoring_telemetry_point (device_id, ts)",
    # window_values over every device for a short window: points arrive in time order, so a
    # block range index finds them for almost nothing on the hot path.
    "CREATE INDEX monitoring_telemetry_point_ts_brin ON monitoring_telemetry_point USING brin (ts)",
    # The rollup task's delta (received since the watermark), in arrival order as well.
    "CREATE INDEX monitoring_telemetry_point_received_brin ON monitoring_telemetry_point USING brin (received_at)",
    # Rollups: the primary key serves a device's chart and the upsert; window_values over
    # every device reads by bucket.
    f"CREATE TABLE monitoring_telemetry_minute ({_ROLLUP_COLUMNS}) PARTITION BY RANGE (bucket)",
    "CREATE INDEX monitoring_telemetry_minute_bucket_brin ON monitoring_telemetry_minute USING brin (bucket)",
    f"CREATE TABLE monitoring_telemetry_hour ({_ROLLUP_COLUMNS}) PARTITION BY RANGE (bucket)",
    "CREATE INDEX monitoring_telemetry_hour_bucket_brin ON monitoring_telemetry_hour USING brin (bucket)",
]
DROP = [
    f"DROP TABLE IF EXISTS {table}"
    for table in ("monitoring_telemetry_hour", "monitoring_telemetry_minute", "monitoring_telemetry_point")
]


def create_partitions(apps, schema_editor):
    from monitoring.telemetry import partitions

    partitions.forget()
    partitions.maintain()


class Migration(migrations.Migration):
    dependencies = [("devices", "0010_claim_template"), ("monitoring", "0001_presence")]

    operations = [
        migrations.CreateModel(
            name="TelemetryRollupState",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("rolled_up_to", models.DateTimeField()),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(condition=models.Q(id=1), name="telemetry_one_state")
                ],
            },
        ),
        migrations.RunSQL(CREATE, DROP),
        migrations.RunPython(create_partitions, migrations.RunPython.noop),
    ]
