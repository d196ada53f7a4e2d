"""MQTT handlers: certificate rotation and first-connection activation."""


def register() -> None:
    pass
