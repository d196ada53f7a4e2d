"""`make run`'s demo configuration lands in the demo devices' `config` shadows, and running it
again changes nothing."""

import io

import pytest
from django.core.management import call_command

from shadows.models import ConfigChange, Shadow

pytestmark = pytest.mark.django_db


def test_demo_configuration_reaches_the_demo_fleet_once():
    call_command("seed_demo", devices=30, stdout=io.StringIO())
    call_command("seed_demo_configuration", stdout=io.StringIO())
    changes = ConfigChange.objects.count()
    shadows = Shadow.objects.filter(name="config", live=True)
    assert shadows.count() > 0
    gateway = shadows.filter(device__device_type="gateway").first()
    assert gateway.desired_state["log_level"] in ("info", "debug")
    assert gateway.desired_state["uplink"] == {"protocol": "mqtt", "keepalive": 60}

    call_command("seed_demo_configuration", stdout=io.StringIO())
    assert ConfigChange.objects.count() == changes
