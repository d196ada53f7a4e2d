"""The device page's Jobs & rollouts tab (a section on devices.pages.DEVICE_PAGE): the device's
job executions, newest first, with their status and statusDetails, and its rollout entries
(wave, outcome, why it failed). Two queries however long the device's history: each list is
cut to its newest rows (execution_device_queued_idx; rollout entries by their device key)."""

import json

from devices.pages import DEVICE_PAGE
from firmware.models import JobExecution
from firmware.rollouts.models import RolloutDevice
from fleetportal.pages import Section

EXECUTIONS_SHOWN = 20
ROLLOUTS_SHOWN = 10


def _context(request, device) -> dict:
    executions = list(
        JobExecution.objects.filter(device=device)
        .select_related("job")
        .order_by("-queued_at", "-pk")[:EXECUTIONS_SHOWN]
    )
    entries = list(
        RolloutDevice.objects.filter(device=device)
        .select_related("rollout", "wave")
        .order_by("-rollout__created_at")[:ROLLOUTS_SHOWN]
    )
    return {
        "executions": [(e, _details(e.status_details)) for e in executions],
        "executions_shown": EXECUTIONS_SHOWN,
        "rollout_entries": entries,
    }


def _details(details: dict) -> str:
    return json.dumps(details, sort_keys=True, ensure_ascii=False) if details else ""


def register() -> None:
    DEVICE_PAGE.add_section(
        Section(
            "jobs",
            "admin/firmware/device_jobs.html",
            _context,
            permission="firmware.view_jobexecution",
            order=35,
        )
    )
