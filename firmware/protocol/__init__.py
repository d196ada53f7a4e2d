"""The jobs device protocol (device-protocol.md §2): request reading (requests), the service
(service), MQTT answers (replies), repeated messages (repeats) and firmware runs (firmware_runs).
"""
