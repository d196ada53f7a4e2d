"""The Celery application: OTA rollouts, credential issuance and sweeps run here."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init, worker_ready

from fleetportal import log_filters

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetportal.settings")

app = Celery("fleetportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The periodic tasks every few seconds stay off the console unless they changed something.
log_filters.quiet_periodic_tasks()


@worker_init.connect
def _refuse_insecure_key_in_worker(**kwargs):
    from fleetportal.startup import require_real_secret_key

    require_real_secret_key("celery worker")


@beat_init.connect
def _refuse_insecure_key_in_beat(**kwargs):
    from fleetportal.startup import require_real_secret_key

    require_real_secret_key("celery beat")


@worker_ready.connect
def _resume_stalled_jobs(sender, **kwargs):
    # A worker that starts after a crash picks up what its predecessor left (once it is stale).
    sender.app.send_task("fleetportal.tasks.resume_stalled_jobs")
