"""Admin pages for device credentials (certificates)."""
