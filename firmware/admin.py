"""Admin pages of the firmware app."""

from firmware import admin_jobs  # noqa: F401
