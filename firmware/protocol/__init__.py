"""The jobs device protocol (device-protocol.md §2): request reading (requests), the moves a
request makes on rows in memory (moves, pure), the service (service), the bridge's batched path
(batch, with its statements in batch_sql), MQTT answers (replies), repeated messages (repeats)
and firmware runs (firmware_runs).
"""
