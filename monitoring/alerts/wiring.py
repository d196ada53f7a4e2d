"""Hooks, routes and handlers of monitoring's alerts part (MonitoringConfig.ready)."""


def register() -> None:
    """The alerts' Celery tasks and admin pages (monitoring has one admin module per part)."""
    from monitoring.alerts import admin, device_list, device_page, tasks  # noqa: F401

    device_list.register()
