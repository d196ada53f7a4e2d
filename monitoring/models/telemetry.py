"""Models of monitoring's telemetry part."""
