"""Models of monitoring's presence part."""
