"""Models of monitoring's summary part."""
