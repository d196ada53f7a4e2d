"""The firmware app's admin pages; each part lives in its own module."""

from django.contrib import admin

from firmware import (
    admin_jobs,  # noqa: F401  (jobs, templates, executions register themselves)
    admin_rollouts,  # noqa: F401  (rollouts register themselves)
)
from firmware.admin_catalog import FirmwareVersionAdmin
from firmware.models import FirmwareVersion

admin.site.register(FirmwareVersion, FirmwareVersionAdmin)
