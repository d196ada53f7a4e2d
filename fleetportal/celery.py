"""The Celery application: OTA rollouts, credential issuance and sweeps run here."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleetportal.settings")

app = Celery("fleetportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
