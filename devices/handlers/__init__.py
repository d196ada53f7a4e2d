"""MQTT handlers of the devices app, registered with the bridge's router in DevicesConfig.ready."""


def register_all() -> None:
    from devices.handlers import provisioning, rotation

    provisioning.register()
    rotation.register()
