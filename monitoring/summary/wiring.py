"""Hooks, routes and handlers of monitoring's summary part (MonitoringConfig.ready)."""


def register() -> None:
    """The bridge's batch counters for /metrics, the summary page's WebSocket, the summary as
    the console's home page, and slots of their own for /healthz and /metrics."""
    from django.urls import path

    from fleetportal import routing, web_concurrency
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
    # A load balancer's health check and Prometheus's scrape still answer while a download
    # storm fills the views' slots — bounded too: each opens a database connection.
    web_concurrency.separate_lane("monitoring", ("/healthz", "/metrics"), slots=2)
