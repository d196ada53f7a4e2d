"""Hooks, routes and handlers of monitoring's telemetry part (MonitoringConfig.ready)."""


def register() -> None:
    """Nothing to register yet."""
