"""MQTT handlers of the devices app, registered with the bridge's router in DevicesConfig.ready."""


def register_all() -> None:
    from devices.handlers import connections, presence, provisioning, rotation, throttling

    connections.register()
    presence.register()
    provisioning.register()
    rotation.register()
    throttling.register()
