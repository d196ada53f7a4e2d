"""Hooks, routes and handlers of monitoring's presence part (MonitoringConfig.ready)."""


def register() -> None:
    """Nothing to register yet."""
