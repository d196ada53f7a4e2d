"""Models of monitoring's alerts part."""
