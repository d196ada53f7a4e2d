"""Hooks, routes and handlers of monitoring's telemetry part (MonitoringConfig.ready)."""

from fleetportal import topics
from fleetportal.bridge import router

TELEMETRY = "telemetry"


def register() -> None:
    from monitoring.telemetry import ingest, pages, tasks  # noqa: F401 (tasks: for the worker)

    # devices' router device hooks keep last_seen for these messages; storing is ours.
    router.subscribe(
        "device:" + TELEMETRY, ingest.store, topics.device_filter(TELEMETRY), isolated=True
    )
    router.on_batch(ingest.begin, ingest.flush, ingest.end)
    pages.register()
