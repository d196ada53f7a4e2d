"""Hooks, routes and handlers of monitoring's summary part (MonitoringConfig.ready)."""


def register() -> None:
    """Nothing to register yet."""
