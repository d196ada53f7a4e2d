"""manage.py simulate_fleet: prepares what a factory would (template, claim certificate, CA
chain, firmware key), runs the devices and prints what they did."""

import io
import json
import os
import signal
import subprocess
import sys
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from devices.models import Device, ProvisioningTemplate
from monitoring.models import Presence
from tests.firmware.catalog_helpers import firmware_env  # noqa: F401  (a fixture)
from tests.simulator.helpers import claim_template, eventually, issued_store


def quick(tmp_path) -> str:
    """A profile file with short clocks (the shipped ones spread connections over seconds)."""
    path = tmp_path / "quick.json"
    path.write_text(json.dumps({"timing": {"connect_spread_seconds": 0.3, "report_seconds": 1}}))
    return str(path)


def run(*arguments) -> str:
    out = io.StringIO()
    call_command("simulate_fleet", *arguments, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_a_bad_profile_stops_the_command_naming_the_knob(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"faults": {"fail_update": 2}}))
    with pytest.raises(CommandError, match=r"faults\.fail_update: must be a share"):
        run("--devices", "1", "--profile", str(path))
    with pytest.raises(CommandError, match="No profile named 'nope'"):
        run("--devices", "1", "--profile", "nope")


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_short_run_claims_reports_and_prints_its_summary(
    broker,
    bridge,
    firmware_env,  # noqa: F811
    tmp_path,
):
    printed = run(
        *("--devices", "3", "--seconds", "6", "--prefix", "cmd", "--template", "cmdsim"),
        *("--status-every", "4"),
        *("--state-dir", str(tmp_path / "state"), "--profile", quick(tmp_path)),
    )
    assert "Created provisioning template cmdsim (sensor)." in printed
    assert ProvisioningTemplate.objects.filter(name="cmdsim").exists()
    assert set(Device.objects.values_list("device_id", flat=True)) >= {
        "cmd-00001",
        "cmd-00002",
        "cmd-00003",
    }
    assert "simulator: 3/3 online" in printed  # the status line while it ran
    assert "Simulated 3 device(s)" in printed
    assert "provisioned by claim: 3" in printed
    assert "connected: 3 device(s)" in printed
    assert "errors: none" in printed, printed


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_issued_certificates_are_used_as_they_are(broker, bridge, tmp_path):
    store = issued_store(tmp_path / "bundle", ["bundled-1", "bundled-2"])
    printed = run(
        *("--devices", "5", "--seconds", "4", "--certificates", str(store)),
        *("--state-dir", str(tmp_path / "state"), "--profile", quick(tmp_path)),
    )
    assert "Simulating 2 device(s)" in printed
    assert "certificates on disk already: 2" in printed
    assert "provisioned by claim: 0" in printed
    assert "errors: none" in printed, printed


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_ctrl_c_stops_the_fleet_cleanly_and_prints_the_summary(broker, bridge, tmp_path):
    claim_template("ctrlc", tmp_path / "unused")  # the command finds it and issues its own claim
    url = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/x"))
    env = {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"])),
        "FLEETPORTAL_SECRET_KEY": "test-only-not-secret",
        "FLEETPORTAL_CA_DIR": str(broker.ca_dir),
        "FLEETPORTAL_BROKER_DIR": str(broker.dir),
        "FLEETPORTAL_BROKER_HOST": broker.host,
        "FLEETPORTAL_BROKER_DEVICE_PORT": str(broker.device_port),
        "FLEETPORTAL_BROKER_CLAIM_PORT": str(broker.claim_port),
        "FLEETPORTAL_FIRMWARE_SIGNING_KEY": str(tmp_path / "no-key"),
    }
    arguments = ("--devices", "2", "--prefix", "ctrlc", "--template", "ctrlc")
    arguments += ("--state-dir", str(tmp_path / "state"), "--profile")
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "simulate_fleet", *arguments, quick(tmp_path)],
        cwd=settings.BASE_DIR,
        env={**env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        eventually(
            lambda: (
                Presence.objects.filter(device__device_id__startswith="ctrlc-", online=True).count()
                == 2
            ),
            timeout=60,
            what="two simulated devices online",
        )
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "No firmware signing key" in err  # said once, up front
    assert "provisioned by claim: 2" in out and "errors: none" in out, out
    eventually(
        lambda: (
            Presence.objects.filter(device__device_id__startswith="ctrlc-", online=False).count()
            == 2
        ),
        what="both offline after Ctrl-C",
    )
