"""Firmware's entry on the device list (devices.device_list): "Run a job on these devices" opens
the job form on the list's current filter, for those who may create jobs. Not on the unfiltered
list: a job on every device is no filter (firmware.jobs.filter_targets refuses it)."""

from devices.device_list import DEVICE_LIST, ListAction
from firmware import admin_job_filter


def register() -> None:
    DEVICE_LIST.add_action(
        ListAction(
            "run-job",
            "Run a job on these devices",
            "firmware.add_job",
            admin_job_filter.job_form_url,
            order=10,
            needs_filter=True,
        )
    )
