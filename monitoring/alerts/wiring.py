"""Hooks, routes and handlers of monitoring's alerts part (MonitoringConfig.ready)."""


def register() -> None:
    """Nothing to register yet."""
