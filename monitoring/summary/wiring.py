"""Hooks, routes and handlers of monitoring's summary part (MonitoringConfig.ready)."""


def register() -> None:
    """The bridge's batch counters for /metrics, and the summary page's WebSocket."""
    from django.urls import path

    from fleetportal import routing
    from fleetportal.bridge import router
    from monitoring.summary.bridge_metrics import counters
    from monitoring.summary.consumers import FleetSummaryConsumer

    router.on_batch(counters.begin, counters.flush, counters.end)
    routing.add_websocket_routes(
        path("ws/fleet/summary/", FleetSummaryConsumer.as_asgi(), name="ws-fleet-summary")
    )
