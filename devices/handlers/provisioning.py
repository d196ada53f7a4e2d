"""MQTT handlers: fleet provisioning by claim (device-protocol.md §3)."""


def register() -> None:
    pass
