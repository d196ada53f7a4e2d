"""Hooks, routes and handlers of monitoring's presence part (MonitoringConfig.ready)."""

from devices import online
from fleetportal import topics
from fleetportal.bridge import connections, router


def register() -> None:
    # admin registers its pages, tasks its Celery task (autodiscovery looks at monitoring.tasks).
    from monitoring.presence import (  # noqa: F401
        admin,
        device_list,
        device_page,
        handlers,
        tasks,
        writes,
    )
    from monitoring.presence.queries import online_condition

    connections.on_connected(handlers.on_connected)
    connections.on_disconnected(handlers.on_disconnected)
    # devices keeps last_seen for every message; presence is ours.
    # Isolated: the handler only queues a signal; the batch writes (monitoring.presence.writes).
    router.subscribe(
        writes.PRESENCE_KIND,
        handlers.on_presence_message,
        topics.device_filter("presence"),
        isolated=True,
    )
    router.on_device_message(writes.heard)
    router.on_batch(writes.begin, writes.flush, writes.end)
    online.define(online_condition)
    device_list.register()
    device_page.register()
