"""Hooks, routes and handlers of monitoring's summary part (MonitoringConfig.ready)."""


def register() -> None:
    """The bridge's batch counters for /metrics, the summary page's WebSocket, and the
    summary as the console's home page."""
    from django.urls import path

    from fleetportal import routing
    from fleetportal.admin_site import HOME_PAGE
    from fleetportal.bridge import router
    from fleetportal.pages import Section
    from monitoring.summary.api import VIEW
    from monitoring.summary.bridge_metrics import counters
    from monitoring.summary.consumers import FleetSummaryConsumer
    from monitoring.summary.pages import home_section

    router.on_batch(counters.begin, counters.flush, counters.end)
    routing.add_websocket_routes(
        path("ws/fleet/summary/", FleetSummaryConsumer.as_asgi(), name="ws-fleet-summary")
    )
    HOME_PAGE.add_section(
        Section("fleet-summary", "monitoring/dashboard.html", home_section, VIEW, order=10)
    )
