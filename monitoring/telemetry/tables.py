"""The telemetry tables' names and shapes (created in monitoring/migrations/0002_telemetry.py).

One row per value — (device, name, ts, value) — rather than one row per message with arrays:
every query (a chart, a window average, a rollup) reads one name's values with `date_bin` and
plain aggregates, and PostgreSQL's per-row overhead is paid back by not unnesting arrays on
each read (docs/monitoring-telemetry.md, "Row shape").
"""

POINTS = "monitoring_telemetry_point"
MINUTES = "monitoring_telemetry_minute"
HOURS = "monitoring_telemetry_hour"
STATE = "monitoring_telemetryrollupstate"

# Every table partitioned by day on its time column.
PARTITIONED = {POINTS: "ts", MINUTES: "bucket", HOURS: "bucket"}
