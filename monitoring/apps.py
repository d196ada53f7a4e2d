from django.apps import AppConfig


class MonitoringConfig(AppConfig):
    """Fleet health (issue 14): presence, telemetry, alerts, the fleet summary, /metrics.

    The top of the import order: it may import every other app, nothing imports it. Each part
    registers its bridge handlers, hooks and live routes here."""

    name = "monitoring"

    def ready(self):
        from monitoring.alerts import wiring as alerts
        from monitoring.presence import wiring as presence
        from monitoring.summary import wiring as summary
        from monitoring.telemetry import wiring as telemetry

        for part in (presence, telemetry, alerts, summary):
            part.register()
